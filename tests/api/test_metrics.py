"""Prometheus metrics: job counts by status, queue, latency histograms, HTTP counts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import MakeApp, submit, wait_done


def samples(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_metrics_after_some_jobs(client: TestClient) -> None:
    ids = [submit(client).json()["id"] for _ in range(2)]
    for job_id in ids:
        assert wait_done(client, job_id)["status"] == "succeeded"
    client.get("/nope")
    m = samples(client)
    jobs = {labels["status"]: v for labels, v in m["cleancut_jobs"]}
    assert jobs["succeeded"] == 2
    assert set(jobs) == {"queued", "processing", "succeeded", "failed", "canceled"}
    assert m["cleancut_queue_depth"][0][1] == 0
    assert m["cleancut_queue_size"][0][1] == 64
    assert m["cleancut_workers"][0][1] == 1
    assert m["cleancut_job_latency_seconds_count"][0][1] == 2
    assert m["cleancut_job_processing_seconds_count"][0][1] == 2
    inf = [v for labels, v in m["cleancut_job_latency_seconds_bucket"] if labels["le"] == "+Inf"]
    assert inf == [2]
    stage_counts = {labels["stage"]: v for labels, v in m["cleancut_job_stage_seconds_count"]}
    assert stage_counts == {"decode": 2, "inference": 2, "refine": 2, "encode": 2}
    assert all(v > 0 for _, v in m["cleancut_job_stage_seconds_sum"])
    http = {
        (labels["method"], labels["route"], labels["status"]): v
        for labels, v in m["cleancut_http_requests_total"]
    }
    assert http[("POST", "/v1/jobs", "202")] == 2
    assert http[("GET", "/v1/jobs/{job_id}", "200")] >= 2
    assert http[("GET", "<unmatched>", "404")] == 1
    assert not any(ids[0] in route for _, route, _ in http)  # templates, never raw ids


def test_each_app_has_its_own_registry(make_app: MakeApp) -> None:
    with TestClient(make_app()) as a, TestClient(make_app()) as b:
        a.get("/healthz")
        counts = samples(b).get("cleancut_http_requests_total", [])
        assert not any(labels["route"] == "/healthz" for labels, _ in counts)
