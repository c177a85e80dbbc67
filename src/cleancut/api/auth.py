"""API keys and per-key rate limits.

Keys arrive in ``x-api-key`` or ``Authorization: Bearer`` (either may hold the key when a client
sends both); only their sha256 digests are kept
(settings hash plain keys on load) and a presented key is hashed and compared against every
stored digest in constant time. A client's owner id is a short prefix of its digest: enough to
tell keys apart in job records, useless for recovering the key.

Every authenticated request takes a token from its key's bucket (capacity ``burst``, refilled at
``per_minute``/60 per second). The decision is written into the request's ASGI state and
:class:`RateLimitHeaders` adds ``X-RateLimit-Limit/Remaining/Reset`` to whatever response follows,
errors included; a refusal is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cleancut.errors import RateLimited, Unauthorized

OWNER_CHARS = 16
_STATE_KEY = "cleancut_ratelimit"

api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False, scheme_name="ApiKey")
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="Bearer")


@dataclass(frozen=True)
class Client:
    """Who is calling: ``owner`` is None when auth is off (every job is then shared)."""

    owner: str | None
    bucket: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until the next token (0 when allowed)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }


class KeyRing:
    def __init__(self, hashes: tuple[str, ...]) -> None:
        self._hashes = tuple(bytes.fromhex(h) for h in hashes)

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def owner_of(self, key: str) -> str | None:
        digest = hashlib.sha256(key.encode()).digest()
        found: bytes | None = None
        for stored in self._hashes:  # no early exit: the time does not depend on which key
            if hmac.compare_digest(digest, stored):
                found = stored
        return found.hex()[:OWNER_CHARS] if found is not None else None


class RateLimiter:
    """Token buckets by name; the least recently used are forgotten beyond ``max_buckets``."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, name: str) -> Decision:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[name] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        retry = 0.0 if allowed else (1.0 - tokens) / self.rate
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset=(self.burst - tokens) / self.rate,
            retry_after=retry,
        )


class Authenticator:
    """Identifies and rate-limits callers; ``create_app`` puts one in ``app.state.authenticator``
    and every /v1 route depends on :func:`require_client`."""

    def __init__(self, keys: KeyRing, limiter: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter

    def admit(self, request: Request, api_key: str | None, bearer: str | None) -> Client:
        client = self.identify(request, api_key, bearer)
        if self.limiter.enabled:
            decision = self.limiter.take(client.bucket)
            request.scope.setdefault("state", {})[_STATE_KEY] = decision
            if not decision.allowed:
                raise RateLimited(
                    "too many requests for this API key",
                    retry_after=decision.retry_after,
                    hint=f"at most {self.limiter.burst} at once, "
                    f"{self.limiter.rate * 60:g} per minute",
                )
        return client

    def identify(self, request: Request, api_key: str | None, bearer: str | None) -> Client:
        if not self.keys.enabled:
            host = request.client.host if request.client else "local"
            return Client(owner=None, bucket=f"addr:{host}")
        presented = [key for key in (api_key, bearer) if key]
        if not presented:
            raise Unauthorized(
                "an API key is required", hint="send it as x-api-key or Authorization: Bearer"
            )
        # Some clients send two credentials (Adobe's: an access token as the Bearer and a
        # client id as x-api-key): the request is let in when either one is a valid key.
        # Both are checked, so the time taken does not tell which one matched.
        owners = [self.keys.owner_of(key) for key in presented]
        owner = next((o for o in owners if o is not None), None)
        if owner is None:
            raise Unauthorized("the API key is not valid")
        return Client(owner=owner, bucket=f"key:{owner}")


async def require_client(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Client:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.admit(request, api_key, bearer.credentials if bearer else None)


#: The caller of a route: ``client: Caller``.
Caller = Annotated[Client, Depends(require_client)]


class RateLimitHeaders:
    """ASGI middleware: adds the rate-limit decision taken for this request to its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            decision = state.get(_STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(decision, Decision):
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
