"""``cleancut db upgrade`` and the errors of ``cleancut worker`` / a distributed ``serve``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import psycopg
import pytest

from tests.distributed import services


def cleancut(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCUT_SERVER__")}
    return subprocess.run(
        [sys.executable, "-m", "cleancut.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=120,
        check=False,
    )


def test_db_upgrade_creates_the_schema_once() -> None:
    services.require("PostgreSQL", services.POSTGRES, 5432)
    name = f"cleancut_test_{secrets.token_hex(4)}"
    with psycopg.connect(services.POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{services.POSTGRES.rsplit('/', 1)[0]}/{name}"
    try:
        first = cleancut("db", "upgrade", CLEANCUT_SERVER__DATABASE_URL=url)
        assert first.returncode == 0, first.stderr
        assert "migrated: empty -> 0001" in first.stdout
        again = cleancut("db", "upgrade", "--url", url)
        assert again.returncode == 0 and "already at revision 0001" in again.stdout
    finally:
        with psycopg.connect(services.POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_db_upgrade_without_a_database_says_so() -> None:
    result = cleancut("db", "upgrade")
    assert result.returncode == 1
    assert "CLEANCUT_SERVER__DATABASE_URL" in result.stderr
    refused = cleancut("db", "upgrade", "--url", "mysql://x/y")
    assert refused.returncode == 1 and "must be PostgreSQL" in refused.stderr


def test_worker_names_the_settings_it_misses() -> None:
    result = cleancut("worker")
    assert result.returncode == 1
    for name in ("DATABASE_URL", "BROKER_URL", "BLOB_URL"):
        assert f"CLEANCUT_SERVER__{name}" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_refuses_an_outdated_database(pg_url: str) -> None:
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE cleancut_alembic_version SET version_num = 'old'")
    try:
        result = cleancut(
            "worker",
            "--models",
            "isnet-general",
            CLEANCUT_SERVER__DATABASE_URL=pg_url,
            CLEANCUT_SERVER__BROKER_URL="redis://127.0.0.1:6379/11",
            CLEANCUT_SERVER__BLOB_URL="/tmp/unused",
        )
    finally:
        with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("UPDATE cleancut_alembic_version SET version_num = '0001'")
    assert result.returncode == 1
    assert "cleancut db upgrade" in result.stderr


@pytest.mark.parametrize("model", ["no-such-model"])
def test_worker_refuses_unknown_models(model: str) -> None:
    result = cleancut(
        "worker",
        "--models",
        model,
        CLEANCUT_SERVER__DATABASE_URL="postgresql://x/y",
        CLEANCUT_SERVER__BROKER_URL="redis://127.0.0.1:1/0",
        CLEANCUT_SERVER__BLOB_URL="/tmp/unused",
    )
    assert result.returncode == 1 and "unknown model" in result.stderr
