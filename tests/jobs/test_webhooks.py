"""Webhooks after the terminal transition: signed, retried with backoff, logged on the job,
and never able to fail it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from cleancut import net
from cleancut.core.predict import ModelPool
from cleancut.jobs.model import JobStatus
from cleancut.jobs.service import Submission
from cleancut.jobs.sqlite import SQLiteJobStore
from cleancut.jobs.webhooks import default_links, payload
from cleancut.net import NetPolicy, WebhookSpec
from tests.jobs.conftest import TINY, Factory, LoopbackServer, png, wait_for
from tests.jobs.test_sqlite import job

S = JobStatus
SECRET = "whsec_test"


def _policy(tls_ca: tuple[Any, Path]) -> NetPolicy:
    return NetPolicy(allow_private=True, ca_file=str(tls_ca[1]), total_timeout=10)


def _hook(server: LoopbackServer, attempts: int) -> WebhookSpec:
    return WebhookSpec(
        server.url("/hook"), SECRET, max_attempts=attempts, backoff_base=0.001, backoff_max=0.002
    )


def _settled(svc: Any, job_id: str) -> Any:
    """The delivery log once the webhook is done with (no retry pending)."""
    return svc.get(job_id).deliveries if svc.deps.webhooks.idle() else None


def test_each_attempt_is_logged_while_retries_wait(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    answers = iter([503, 200])
    http_server.routes["/hook"] = lambda h: h.reply(next(answers))
    policy = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=10)
    svc = make_service(pool, policy=policy)
    # The first retry waits 1-2 s: long enough to look at the log in between.
    hook = WebhookSpec(http_server.url("/hook"), SECRET, max_attempts=2, backoff_base=2.0)
    job = svc.submit(Submission(TINY, upload=image, webhook=hook))
    first = wait_for(lambda: svc.get(job.id).deliveries)
    assert [(d.attempt, d.status_code, d.ok) for d in first] == [(1, 503, False)]
    assert len(http_server.seen) == 1  # the retry has not gone out yet
    logged = wait_for(lambda: _settled(svc, job.id))
    assert [(d.attempt, d.status_code, d.ok) for d in logged] == [(1, 503, False), (2, 200, True)]


def test_delivery_is_signed_retried_and_logged(
    make_service: Factory,
    pool: ModelPool,
    image: bytes,
    https_server: LoopbackServer,
    tls_ca: tuple[Any, Path],
) -> None:
    answers = iter([500, 503, 200])
    https_server.routes["/hook"] = lambda h: h.reply(next(answers))
    svc = make_service(pool, policy=_policy(tls_ca))
    job = svc.submit(Submission(TINY, upload=image, webhook=_hook(https_server, 5)))
    done = svc.wait(job.id, 30)
    assert done.status is S.SUCCEEDED
    logged = wait_for(lambda: _settled(svc, job.id))
    assert [(d.attempt, d.status_code, d.ok) for d in logged] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert svc.get(job.id).status is S.SUCCEEDED

    seen = https_server.seen
    assert len(seen) == 3
    assert len({s.headers["X-Cleancut-Delivery"] for s in seen}) == 1  # one delivery, 3 tries
    for request in seen:
        assert net.verify(SECRET, request.headers, request.body)
    body = json.loads(seen[-1].body)
    assert body["id"] == job.id and body["status"] == "succeeded" and body["error"] is None
    assert set(body["results"]) == {"original", "mask", "cutout"}
    assert body["links"]["result"] == f"/v1/jobs/{job.id}/result"


def test_a_failing_receiver_never_fails_the_job(
    make_service: Factory,
    pool: ModelPool,
    image: bytes,
    https_server: LoopbackServer,
    tls_ca: tuple[Any, Path],
) -> None:
    https_server.routes["/hook"] = lambda h: h.reply(500)
    svc = make_service(pool, policy=_policy(tls_ca))
    job = svc.submit(Submission(TINY, upload=image, webhook=_hook(https_server, 2)))
    logged = wait_for(lambda: _settled(svc, job.id))
    assert [(d.status_code, d.ok) for d in logged] == [(500, False), (500, False)]
    assert svc.get(job.id).status is S.SUCCEEDED
    assert any("webhook" in line and "failed" in line for line in make_service.logs)


def test_failed_jobs_are_reported_with_their_error(
    make_service: Factory, pool: ModelPool, http_server: LoopbackServer
) -> None:
    http_server.routes["/hook"] = lambda h: h.reply(204)
    policy = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=10)
    svc = make_service(pool, policy=policy)
    hook = WebhookSpec(http_server.url("/hook"), SECRET, max_attempts=1)
    job = svc.submit(Submission(TINY, upload=png()[:120], webhook=hook))
    logged = wait_for(lambda: svc.get(job.id).deliveries)
    assert [(d.status_code, d.ok) for d in logged] == [(204, True)]
    body = json.loads(http_server.seen[0].body)
    assert body["status"] == "failed"
    assert body["error"]["code"] == "corrupt_image"
    assert body["results"] == {}


def test_an_unreachable_receiver_is_logged_as_errors(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    url = http_server.url("/hook")
    http_server.shutdown()
    http_server.server_close()  # nothing listens on the port now
    policy = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=5)
    svc = make_service(pool, policy=policy)
    hook = WebhookSpec(url, SECRET, max_attempts=2, backoff_base=0.001, backoff_max=0.002)
    job = svc.submit(Submission(TINY, upload=image, webhook=hook))
    logged = wait_for(lambda: _settled(svc, job.id))
    assert len(logged) == 2 and all(d.error and d.status_code is None for d in logged)
    assert svc.get(job.id).status is S.SUCCEEDED


def test_undelivered_webhooks_are_sent_after_a_restart(
    make_service: Factory,
    pool: ModelPool,
    image: bytes,
    http_server: LoopbackServer,
    tmp_path: Path,
) -> None:
    http_server.routes["/hook"] = lambda h: h.reply(200)
    policy = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=10)
    first = make_service(pool, policy=policy)
    done = first.run_sync(Submission(TINY, upload=image), timeout=30)
    first.stop()
    # The server died after the job finished but before its webhook went out.
    store = SQLiteJobStore(tmp_path / "data" / "jobs.sqlite3")
    store._db.execute(
        "UPDATE jobs SET webhook = ?, webhook_done = 0 WHERE id = ?",
        (json.dumps({"url": http_server.url("/hook"), "secret": SECRET}), done.id),
    )
    store.close()
    second = make_service(pool, policy=policy)
    logged = wait_for(lambda: second.get(done.id).deliveries)
    assert [d.ok for d in logged] == [True]
    assert json.loads(http_server.seen[0].body)["id"] == done.id


def test_payload_shape() -> None:
    spec = WebhookSpec("https://example.com/h", "s")

    finished = replace(job(1, S.CANCELED), webhook=spec, finished_at=5.0)
    body = payload(finished)
    assert body["type"] == "job.canceled"
    assert (
        body["links"]
        == default_links(finished)
        == {
            "job": "/v1/jobs/job1",
            "events": "/v1/jobs/job1/events",
        }
    )
    json.dumps(body)
