"""Key hashing, constant-time lookup and the token bucket, without HTTP."""

from __future__ import annotations

import hashlib

import pytest

from cleancut.api.auth import OWNER_CHARS, KeyRing, RateLimiter
from cleancut.config import ServerSettings, Settings, hash_api_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_keys_are_hashed_on_load_and_never_kept() -> None:
    server = ServerSettings(api_keys=("s3cret-key",))
    assert server.api_keys == ()
    assert server.api_key_hashes == (hashlib.sha256(b"s3cret-key").hexdigest(),)
    assert "s3cret-key" not in repr(server)
    assert "s3cret-key" not in server.model_dump_json()
    assert server.auth_enabled


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANCUT_SERVER__API_KEYS", "one, two")
    monkeypatch.setenv("CLEANCUT_SERVER__API_KEY_HASHES", hash_api_key("three"))
    monkeypatch.setenv("CLEANCUT_SERVER__CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("CLEANCUT_SERVER__RATE_LIMIT__PER_MINUTE", "30")
    server = Settings().server
    assert set(server.api_key_hashes) == {hash_api_key(k) for k in ("one", "two", "three")}
    assert server.cors_origins == ("https://a.example",)
    assert server.rate_limit.per_minute == 30


def test_bad_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="sha256"):
        ServerSettings(api_key_hashes=("abc",))


def test_keyring_owner_is_a_short_hash_prefix() -> None:
    ring = KeyRing((hash_api_key("alpha"), hash_api_key("beta")))
    assert ring.enabled
    owner = ring.owner_of("beta")
    assert owner == hash_api_key("beta")[:OWNER_CHARS]
    assert ring.owner_of("gamma") is None
    assert ring.owner_of("") is None
    assert not KeyRing(()).enabled


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    decisions = [limiter.take("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    refused = decisions[3]
    assert refused.limit == 3
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.headers()["X-RateLimit-Reset"] == "3"
    clock.now += 1.0
    assert limiter.take("k").allowed
    assert limiter.take("other").allowed  # buckets are per key


def test_forgotten_buckets_start_full() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=1, clock=clock, max_buckets=2)
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed
    limiter.take("b")
    limiter.take("c")  # evicts a
    assert limiter.take("a").allowed


def test_zero_rate_disables_limiting() -> None:
    assert not RateLimiter(per_minute=0, burst=1).enabled
