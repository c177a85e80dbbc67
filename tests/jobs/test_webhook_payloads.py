"""Vendor-shaped webhook bodies (a renderer chosen by the job's metadata) and metadata on
effects children."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cleancut import net
from cleancut.core.predict import ModelPool
from cleancut.errors import InvalidInput
from cleancut.jobs.model import Job, JobStatus
from cleancut.jobs.service import Submission
from cleancut.jobs.webhooks import PAYLOAD_KEY
from cleancut.net import NetPolicy, WebhookSpec
from tests.jobs.conftest import TINY, Factory, LoopbackServer, wait_for

SECRET = "whsec_payloads"
PLAIN_HTTP = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=10)


def _vendor_body(job: Job) -> dict[str, Any]:
    return {"artwork": job.id, "state": job.status.value, "echo": job.meta.get("echo")}


def _delivered(svc: Any, job_id: str) -> Any:
    return svc.get(job_id).deliveries if svc.deps.webhooks.idle() else None


def test_a_registered_renderer_shapes_the_signed_body(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/hook"] = lambda h: h.reply(200)
    svc = make_service(pool, policy=PLAIN_HTTP, start=False)
    svc.register_webhook_payload("vendor", _vendor_body)
    svc.start()
    hook = WebhookSpec(http_server.url("/hook"), SECRET, max_attempts=1)
    meta = {PAYLOAD_KEY: "vendor", "echo": [1, "two"]}
    job = svc.submit(Submission(TINY, upload=image, webhook=hook, meta=meta))
    logged = wait_for(lambda: _delivered(svc, job.id))
    assert [(d.status_code, d.ok) for d in logged] == [(200, True)]
    (seen,) = http_server.seen
    assert net.verify(SECRET, seen.headers, seen.body)
    assert json.loads(seen.body) == {"artwork": job.id, "state": "succeeded", "echo": [1, "two"]}


def test_an_unknown_renderer_falls_back_to_the_default_payload(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/hook"] = lambda h: h.reply(204)
    svc = make_service(pool, policy=PLAIN_HTTP)
    hook = WebhookSpec(http_server.url("/hook"), SECRET, max_attempts=1)
    job = svc.submit(Submission(TINY, upload=image, webhook=hook, meta={PAYLOAD_KEY: "gone"}))
    wait_for(lambda: _delivered(svc, job.id))
    body = json.loads(http_server.seen[0].body)
    assert body["id"] == job.id and body["type"] == "job.succeeded"
    assert any("'gone'" in line for line in make_service.logs)


def test_effects_children_carry_their_own_metadata(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool)
    parent = svc.submit(Submission(TINY, upload=image, meta={"who": "parent"}))
    assert svc.wait(parent.id, 30).status is JobStatus.SUCCEEDED
    plain = svc.apply_effects(parent.id, TINY)
    assert plain.meta == {} and svc.get(plain.id).meta == {}
    child = svc.apply_effects(parent.id, TINY, meta={"who": "child", "n": 2})
    assert svc.get(child.id).meta == {"who": "child", "n": 2}
    assert svc.get(child.id).parent_id == parent.id
    with pytest.raises(InvalidInput):
        svc.apply_effects(parent.id, TINY, meta={"blob": "x" * 100_000})
    with pytest.raises(InvalidInput):
        svc.apply_effects(parent.id, TINY, meta={"bad": object()})
