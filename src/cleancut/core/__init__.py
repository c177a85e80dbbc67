"""The pure image pipeline: decode → model → matte → compose → encode. No web, no settings."""
