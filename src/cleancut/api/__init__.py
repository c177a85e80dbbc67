"""The HTTP server: ``create_app(settings)`` in :mod:`cleancut.api.app` builds it (imported
lazily so that ``import cleancut.api`` stays cheap)."""
