"""The PostgreSQL tables as SQLAlchemy Core objects (what the store queries).

The schema itself is created and changed only by the Alembic migrations in ``migrations/``;
``tests/distributed`` checks that the migrated database matches these tables, and that every
column the shared row codec (``jobs/rows.py``) writes exists here.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

#: One row per job. Option, result, timing, delivery, destination and meta columns hold the
#: same JSON text as SQLite's (``jobs/rows.py``). Three columns exist only here:
#: ``heartbeat_at`` (the running worker's last sign of life), ``enqueued_at`` (when the job's
#: broker message was last published) and ``worker`` (who runs or ran it).
jobs = Table(
    "cleancut_jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("owner", Text),
    Column("idempotency_key", Text),
    Column("parent_id", Text),
    Column("source_url", Text),
    Column("options", Text, nullable=False),
    Column("webhook", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("expires_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("stage", Text),
    Column("progress", Double, nullable=False, server_default="0"),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("results", Text, nullable=False, server_default="{}"),
    Column("timings", Text, nullable=False, server_default="{}"),
    Column("deliveries", Text, nullable=False, server_default="[]"),
    Column("destinations", Text, nullable=False, server_default="[]"),
    Column("meta", Text, nullable=False, server_default="{}"),
    Column("webhook_done", Boolean, nullable=False, server_default="false"),
    Column("heartbeat_at", Double),
    Column("enqueued_at", Double),
    Column("worker", Text),
)

#: Live workers: each writes its row with every heartbeat (for /readyz, /metrics and the
#: queue-full estimate) and deletes it when it stops.
workers = Table(
    "cleancut_workers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("queues", Text, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("busy", Integer, nullable=False, server_default="0"),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
)

#: Alembic's bookkeeping table (named so it never collides with another application's).
VERSION_TABLE = "cleancut_alembic_version"
