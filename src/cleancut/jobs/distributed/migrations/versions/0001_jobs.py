"""Job records, their indexes, and the live-workers table.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TERMINAL = "status IN ('succeeded', 'failed', 'canceled')"


def upgrade() -> None:
    op.create_table(
        "cleancut_jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("parent_id", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("webhook", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stage", sa.Text),
        sa.Column("progress", sa.Double, nullable=False, server_default="0"),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("results", sa.Text, nullable=False, server_default="{}"),
        sa.Column("timings", sa.Text, nullable=False, server_default="{}"),
        sa.Column("deliveries", sa.Text, nullable=False, server_default="[]"),
        sa.Column("destinations", sa.Text, nullable=False, server_default="[]"),
        sa.Column("meta", sa.Text, nullable=False, server_default="{}"),
        sa.Column("webhook_done", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("heartbeat_at", sa.Double),
        sa.Column("enqueued_at", sa.Double),
        sa.Column("worker", sa.Text),
    )
    # The queue-depth count and the oldest-first claim: status, then age.
    op.create_index("cleancut_jobs_status_created", "cleancut_jobs", ["status", "created_at"])
    # Listing: everyone's newest first, and one owner's newest first.
    op.create_index("cleancut_jobs_created", "cleancut_jobs", ["created_at"])
    op.create_index("cleancut_jobs_owner_created", "cleancut_jobs", ["owner", "created_at"])
    # Retention: finished jobs by expiry.
    op.create_index(
        "cleancut_jobs_expires",
        "cleancut_jobs",
        ["expires_at"],
        postgresql_where=sa.text(_TERMINAL),
    )
    # Idempotency keys are unique per owner (NULL owner counts as one owner).
    op.create_index(
        "cleancut_jobs_idempotency",
        "cleancut_jobs",
        [sa.text("coalesce(owner, '')"), "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    # The reaper: processing jobs by heartbeat, queued jobs by their last publish.
    op.create_index(
        "cleancut_jobs_heartbeat",
        "cleancut_jobs",
        ["heartbeat_at"],
        postgresql_where=sa.text("status = 'processing'"),
    )
    op.create_index(
        "cleancut_jobs_enqueued",
        "cleancut_jobs",
        ["enqueued_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    # Webhooks a stopped process left unsettled.
    op.create_index(
        "cleancut_jobs_webhook_pending",
        "cleancut_jobs",
        ["finished_at"],
        postgresql_where=sa.text(f"webhook IS NOT NULL AND NOT webhook_done AND {_TERMINAL}"),
    )
    op.create_table(
        "cleancut_workers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("queues", sa.Text, nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("busy", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("heartbeat_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cleancut_workers")
    op.drop_table("cleancut_jobs")
