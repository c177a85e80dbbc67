"""Waiting in tests: poll a condition until it holds, follow a Server-Sent Events stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, step: float = 0.01) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def sse_events(client: httpx.Client, url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a Server-Sent Events stream, until the server ends it."""
    with client.stream("GET", url, timeout=httpx.Timeout(10, read=120)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif not line and data:
                yield name, json.loads(data)
                name, data = "message", ""
