"""Alembic environment of cleancut's PostgreSQL schema (run through ``cleancut db upgrade``).

``migrate.upgrade`` hands over an open connection in ``config.attributes["connection"]``;
the plain ``alembic`` command line works too, with ``sqlalchemy.url`` set in its config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from cleancut.jobs.distributed.schema import VERSION_TABLE, metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (or run `cleancut db upgrade`)")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


main()
