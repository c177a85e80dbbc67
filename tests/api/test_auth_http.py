"""API keys, per-key rate limits and CORS over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cleancut.config import hash_api_key
from tests.api.conftest import KEY, OTHER_KEY, MakeApp, assert_error, submit


def keyed(make_app: MakeApp, **server: object) -> TestClient:
    server.setdefault("api_keys", (KEY, OTHER_KEY))
    return TestClient(make_app(**server), raise_server_exceptions=False)


def test_no_key_wrong_key_right_key(make_app: MakeApp) -> None:
    with keyed(make_app) as client:
        err = assert_error(client.get("/v1/jobs"), 401, "unauthorized")
        assert "x-api-key" in err["hint"]
        assert_error(client.get("/v1/jobs", headers={"x-api-key": "wrong"}), 401, "unauthorized")
        assert_error(client.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(client.get("/v1/jobs", headers={"Authorization": f"Basic {KEY}"}), 401)
        assert client.get("/v1/jobs", headers={"x-api-key": KEY}).status_code == 200
        assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        # probes and docs stay open
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_a_valid_key_in_either_of_two_headers_is_enough(make_app: MakeApp) -> None:
    """Adobe clients send an access token as the Bearer and a client id as x-api-key."""
    with keyed(make_app) as client:
        for api_key, bearer in ((KEY, "an-ims-token"), ("client-id", KEY)):
            headers = {"x-api-key": api_key, "Authorization": f"Bearer {bearer}"}
            assert client.get("/v1/jobs", headers=headers).status_code == 200
        both_wrong = {"x-api-key": "client-id", "Authorization": "Bearer an-ims-token"}
        assert_error(client.get("/v1/jobs", headers=both_wrong), 401, "unauthorized")
        # two valid keys: x-api-key names the caller
        mine = submit(client, headers={"x-api-key": KEY}).json()["id"]
        headers = {"x-api-key": KEY, "Authorization": f"Bearer {OTHER_KEY}"}
        assert client.get(f"/v1/jobs/{mine}", headers=headers).status_code == 200


def test_keys_given_as_hashes_work(make_app: MakeApp) -> None:
    with keyed(make_app, api_keys=(), api_key_hashes=(hash_api_key("hashed-only"),)) as client:
        assert client.get("/v1/jobs", headers={"x-api-key": "hashed-only"}).status_code == 200
        assert_error(client.get("/v1/jobs"), 401)


def test_jobs_are_private_to_their_key(make_app: MakeApp) -> None:
    with keyed(make_app) as client:
        mine = {"x-api-key": KEY}
        theirs = {"x-api-key": OTHER_KEY}
        job = submit(client, headers=mine).json()
        assert client.get(f"/v1/jobs/{job['id']}", headers=mine).status_code == 200
        assert_error(client.get(f"/v1/jobs/{job['id']}", headers=theirs), 404, "job_not_found")
        assert_error(client.get(f"/v1/jobs/{job['id']}/original", headers=theirs), 404)
        assert_error(client.delete(f"/v1/jobs/{job['id']}", headers=theirs), 404)
        assert_error(client.get(f"/v1/jobs/{job['id']}/events", headers=theirs), 404)
        assert client.get("/v1/jobs", headers=theirs).json()["jobs"] == []
        # the same idempotency key under two keys: two jobs
        a = submit(client, headers={**mine, "Idempotency-Key": "k"}).json()["id"]
        b = submit(client, headers={**theirs, "Idempotency-Key": "k"}).json()["id"]
        assert a != b


def test_rate_limit_429_with_headers(make_app: MakeApp) -> None:
    with keyed(make_app, rate_limit={"per_minute": 6, "burst": 3}) as client:
        mine = {"x-api-key": KEY}
        seen = [client.get("/v1/jobs", headers=mine) for _ in range(3)]
        assert [r.status_code for r in seen] == [200, 200, 200]
        assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in seen)
        assert all(int(r.headers["x-ratelimit-reset"]) > 0 for r in seen)
        refused = client.get("/v1/jobs", headers=mine)
        err = assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert "per minute" in err["hint"]
        # errors other than 429 carry the headers too, and the other key has its own bucket
        other = client.get("/v1/jobs/0123456789abcdef", headers={"x-api-key": OTHER_KEY})
        assert other.status_code == 404
        assert other.headers["x-ratelimit-remaining"] == "2"


def test_rate_limit_without_keys_is_per_client(make_app: MakeApp) -> None:
    with TestClient(make_app(rate_limit={"per_minute": 60, "burst": 1})) as client:
        assert client.get("/v1/jobs").status_code == 200
        assert_error(client.get("/v1/jobs"), 429, "rate_limited")


def test_cors_is_off_by_default(client: TestClient) -> None:
    r = client.get("/v1/jobs", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in r.headers
    preflight = client.options(
        "/v1/jobs",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(make_app: MakeApp) -> None:
    app = make_app(cors_origins=("https://app.example",), api_keys=(KEY,))
    with TestClient(app, raise_server_exceptions=False) as client:
        origin = {"Origin": "https://app.example"}
        preflight = client.options(
            "/v1/jobs",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
        r = client.get("/v1/jobs", headers={**origin, "x-api-key": KEY})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        denied = client.get(
            "/v1/jobs", headers={"Origin": "https://evil.example", "x-api-key": KEY}
        )
        assert "access-control-allow-origin" not in denied.headers
        # errors carry CORS headers too, so browsers can read the envelope
        assert client.get("/v1/jobs", headers=origin).headers["access-control-allow-origin"]
