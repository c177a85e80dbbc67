"""Schema migrations (Alembic, shipped inside the package) and the engine factory.

Migrations run only through ``cleancut db upgrade`` (one deployment step, before the new API
nodes and workers start); those processes check at start that the database is at this
cleancut's head revision and refuse to run otherwise, so a node never writes rows of a schema
it does not know. An advisory lock makes concurrent upgrades wait for each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from cleancut.errors import CleancutError, InvalidOptions
from cleancut.jobs.distributed.schema import VERSION_TABLE

MIGRATIONS = Path(__file__).parent / "migrations"
#: pg_advisory_lock key held while migrating ("cleancut" in ASCII, as an int64)
_LOCK = 0x636C65616E637574


class SchemaOutdated(CleancutError):
    code = "schema_outdated"
    http_status = 503


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` (or ``postgres://``) URLs use the psycopg 3 driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    if not url.startswith("postgresql+"):
        raise InvalidOptions(
            f"the job database must be PostgreSQL, got {url.split(':', 1)[0]!r}",
            hint="CLEANCUT_SERVER__DATABASE_URL=postgresql://user:password@host:5432/db",
        )
    return url


def make_engine(url: str, **options: Any) -> Engine:
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(sqlalchemy_url(url), **options)


def _config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (before, after)."""
    from alembic import command

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK})
        try:
            before = current(conn)
            conn.commit()
            command.upgrade(_config(conn), revision)
            conn.commit()
            after = current(conn)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
            conn.commit()
    return before, after


def check(engine: Engine) -> None:
    """Raises SchemaOutdated unless the database is at this cleancut's head revision."""
    with engine.connect() as conn:
        found = current(conn)
    wanted = head()
    if found != wanted:
        raise SchemaOutdated(
            f"the job database is at schema revision {found or 'none'}; this cleancut needs "
            f"{wanted}",
            hint="run `cleancut db upgrade` once (with the same CLEANCUT_SERVER__DATABASE_URL)",
        )
