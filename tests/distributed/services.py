"""The real servers the distributed tests use, and how to tell a missing one.

PostgreSQL, Redis and RabbitMQ are expected on loopback (``scripts/services.sh`` starts the
Debian packages' servers; CI runs it). Override with CLEANCUT_TEST_POSTGRES, CLEANCUT_TEST_REDIS
and CLEANCUT_TEST_AMQP. S3 is moto's standalone server, started here as a separate process:
no S3-compatible server is packaged in Debian.

When a server is unreachable the tests are skipped with its name, unless
CLEANCUT_REQUIRE_SERVICES=1 (CI sets it): then they fail, naming it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

from tests import polling

T = TypeVar("T")
POSTGRES = os.environ.get("CLEANCUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: a Redis database number of its own: the tests delete only their own keys in it
REDIS = os.environ.get("CLEANCUT_TEST_REDIS", "redis://127.0.0.1:6379/11")
AMQP = os.environ.get("CLEANCUT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
START_HINT = "start it with scripts/services.sh (CI does)"

#: how the machine's Redis is (re)started (the env's documented command)
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> None:
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url} ({START_HINT})"
    if os.environ.get("CLEANCUT_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def wait_for(probe: Callable[[], T | None], timeout: float = 30.0, step: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    return polling.wait_for(probe, timeout, step)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database ``cleancut_test_<random>`` migrated to head; dropped afterwards."""
    import psycopg

    from cleancut.jobs.distributed import migrate

    require("PostgreSQL", POSTGRES, 5432)
    name = f"cleancut_test_{secrets.token_hex(4)}"
    admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    engine = migrate.make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_redis_keys(url: str, namespace: str) -> None:
    """Delete this test run's keys (queues, kombu bindings, unacked entries) only."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{namespace}*", count=500):
            client.delete(key)
        for tag, payload in client.hscan_iter("unacked"):
            if namespace.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    except redis.RedisError:
        pass
    finally:
        client.close()


def forget_amqp_queues(url: str, queues: list[str]) -> None:
    """Delete this test run's RabbitMQ queues and exchanges (named after the queues)."""
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        for name in queues:
            channel = conn.channel()
            with suppress(Exception):
                channel.queue_delete(name)
                channel.exchange_delete(name)
            with suppress(Exception):
                channel.close()


@dataclass
class MotoServer:
    port: int
    proc: subprocess.Popen[bytes]
    region: str = "us-east-1"
    key: str = "testing"
    secret: str = "testing"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )

    def create_bucket(self) -> str:
        name = f"cleancut-test-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


@contextmanager
def moto_server(log: Path) -> Iterator[MotoServer]:
    """moto's standalone S3 server, a separate process on loopback."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    try:
        wait_port(port)
        yield MotoServer(port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
