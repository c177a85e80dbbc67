"""Webhooks: a pure-data spec, HMAC-SHA256 signatures, and delivery with bounded retries.

Signature: ``X-Cleancut-Signature: sha256=<hex>`` where the hex is
HMAC-SHA256(secret, f"{timestamp}.".encode() + body), and ``X-Cleancut-Timestamp`` holds
``timestamp`` in unix seconds. Receivers call :func:`verify`, which also enforces a replay window.
Each delivery attempt is signed afresh (a retry after a long backoff is not stale) and carries the
same ``X-Cleancut-Delivery`` id, so receivers can de-duplicate.

:func:`deliver` never raises for a failed delivery — a failed webhook never fails a job — only
for a spec or payload that can never be delivered (InvalidWebhook, InvalidURL, URLForbidden).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cleancut.net_errors import InvalidWebhook, URLFetchFailed, URLForbidden
from cleancut.net_http import Connector, Deadline, open_response
from cleancut.net_policy import NetPolicy
from cleancut.net_validate import Resolver, check_url, validate_url

SIGNATURE_HEADER = "X-Cleancut-Signature"
TIMESTAMP_HEADER = "X-Cleancut-Timestamp"
DELIVERY_HEADER = "X-Cleancut-Delivery"
ATTEMPT_HEADER = "X-Cleancut-Attempt"


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    secret: str | bytes = field(repr=False)
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0

    def __post_init__(self) -> None:
        if not self.secret:
            raise InvalidWebhook("a webhook needs a non-empty secret")
        if not 1 <= self.max_attempts <= 20:
            raise InvalidWebhook("webhook max_attempts must be between 1 and 20")
        if not 0 <= self.backoff_base <= self.backoff_max:
            raise InvalidWebhook("webhook backoff must satisfy 0 <= backoff_base <= backoff_max")


@dataclass(frozen=True)
class DeliveryAttempt:
    """One line of the delivery log. ``at`` is the wall-clock start (``clock()``), ``duration``
    seconds; exactly one of ``status_code``/``error`` tells the outcome (``status_code`` alone when
    the receiver answered). ``retry_in`` is the backoff slept before the next attempt, if any."""

    attempt: int
    at: float
    duration: float
    status_code: int | None = None
    error: str | None = None
    retry_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Cleancut-Signature`` value: ``sha256=`` + hex HMAC of ``b"<timestamp>." + body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: str | bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, timestamp, body), TIMESTAMP_HEADER: str(int(timestamp))}


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True when the signature matches and the timestamp is within ``tolerance``
    seconds of ``now`` (either side). Header names are matched case-insensitively; the signature
    header may list several comma-separated values (secret rotation). Constant-time comparison."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).encode()
    candidates = lowered.get(SIGNATURE_HEADER.lower(), "").split(",")
    matches = [
        hmac.compare_digest(expected, c.strip().encode("utf-8", "replace")) for c in candidates
    ]
    return any(matches)


def backoff_delay(spec: WebhookSpec, attempt: int, jitter: float) -> float:
    """Delay after failed ``attempt`` (1-based): "equal jitter" exponential backoff, a value in
    [d/2, d] with d = min(backoff_max, backoff_base * 2**(attempt-1)), ``jitter`` in [0, 1]."""
    ceiling = min(spec.backoff_max, spec.backoff_base * 2.0 ** (attempt - 1))
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


def deliver(
    spec: WebhookSpec,
    payload: Mapping[str, Any],
    policy: NetPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    jitter: Callable[[], float] = random.random,
    resolver: Resolver | None = None,
    connector: Connector | None = None,
    on_attempt: Callable[[DeliveryAttempt], None] | None = None,
) -> list[DeliveryAttempt]:
    """POST ``payload`` as JSON to ``spec.url``, retrying connection errors, timeouts, 5xx and 429
    (honouring ``Retry-After`` up to ``backoff_max``), but not other answers. Returns the log;
    ``on_attempt`` sees each attempt as it ends, so a log can be kept while retries wait."""
    hook_policy = policy.for_webhooks()
    check_url(spec.url, hook_policy)  # raises for a URL that can never be delivered to
    try:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidWebhook(f"the webhook payload is not JSON-serialisable: {exc}") from None
    delivery_id = uuid.uuid4().hex
    log: list[DeliveryAttempt] = []
    for attempt in range(1, spec.max_attempts + 1):
        at, started = clock(), time.monotonic()
        status, error, retryable, retry_after = _attempt(
            spec, body, hook_policy, int(at), delivery_id, attempt, resolver, connector
        )
        duration = time.monotonic() - started
        delay = None
        if retryable and attempt < spec.max_attempts:
            delay = backoff_delay(spec, attempt, jitter())
            if retry_after is not None:
                delay = max(delay, min(retry_after, spec.backoff_max))
        log.append(DeliveryAttempt(attempt, at, duration, status, error, delay))
        if on_attempt is not None:
            on_attempt(log[-1])
        if delay is None:
            break
        sleep(delay)
    return log


def _attempt(
    spec: WebhookSpec,
    body: bytes,
    policy: NetPolicy,
    timestamp: int,
    delivery_id: str,
    attempt: int,
    resolver: Resolver | None,
    connector: Connector | None,
) -> tuple[int | None, str | None, bool, float | None]:
    """(status, error, retryable, retry_after) of one POST; never raises."""
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
        **signature_headers(spec.secret, timestamp, body),
    }
    try:
        target = validate_url(spec.url, policy, resolver=resolver)
        deadline = Deadline(policy.total_timeout)
        with open_response(
            "POST", target, policy, deadline, connector=connector, content=body, headers=headers
        ) as response:
            status = response.status_code  # the reply's body is never read
            retry_after = _retry_after(response.headers.get("retry-after"))
    except URLForbidden as exc:  # the name now resolves somewhere forbidden: never retry
        return None, f"{exc.code}: {exc}", False, None
    except URLFetchFailed as exc:  # connection refused/reset, DNS failure, timeout
        return None, f"{exc.code}: {exc}", True, None
    except Exception as exc:  # a webhook must never fail a job, whatever goes wrong
        return None, f"{type(exc).__name__}: {exc}", False, None
    return status, None, status == 429 or status >= 500, retry_after


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # the HTTP-date form is rare for webhooks; fall back to our own backoff
    return float(value.strip())
