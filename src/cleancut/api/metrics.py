"""Prometheus metrics, in a registry of the app's own (two apps in one process never collide).

HTTP traffic is counted by a small ASGI middleware, labelled by route template (never by raw
path, so job ids do not explode the label space). Job figures are read from the service at scrape
time: job records by status, queue depth and bound, busy workers, and the service's latency
histograms (submit → finished, and start → finished).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cleancut.jobs.service import Histogram as StatsHistogram
from cleancut.jobs.service import ServiceStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _ServiceCollector(Collector):
    def __init__(self, stats: Callable[[], ServiceStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        jobs = GaugeMetricFamily("cleancut_jobs", "Job records by status", labels=["status"])
        for status, count in sorted(stats.counts.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "cleancut_queue_depth", "Jobs waiting for a worker", value=stats.queue_depth
        )
        yield GaugeMetricFamily(
            "cleancut_queue_size", "Queue bound (submissions beyond it get 503)", stats.queue_size
        )
        yield GaugeMetricFamily("cleancut_workers", "Worker threads", value=stats.workers)
        yield GaugeMetricFamily(
            "cleancut_workers_busy", "Workers running a job", value=stats.workers_busy
        )
        queues = GaugeMetricFamily(
            "cleancut_queue_messages",
            "Messages waiting per broker queue (distributed backend: one queue per model)",
            labels=["queue"],
        )
        for name, count in sorted(stats.queues.items()):
            queues.add_metric([name], count)
        yield queues
        yield _histogram(
            "cleancut_job_latency_seconds", "Submit to finished, per job", stats.latency
        )
        yield _histogram(
            "cleancut_job_processing_seconds", "Start to finished, per job", stats.processing
        )
        stages = HistogramMetricFamily(
            "cleancut_job_stage_seconds", "Pipeline stage time, per succeeded job", labels=["stage"]
        )
        for stage, h in sorted(stats.stages.items()):
            stages.add_metric([stage], _buckets(h), sum_value=h.sum)
        yield stages


def _histogram(name: str, doc: str, h: StatsHistogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=_buckets(h), sum_value=h.sum)


def _buckets(h: StatsHistogram) -> list[tuple[str, float]]:
    buckets = [
        ("+Inf" if bound == float("inf") else f"{bound:g}", float(count))
        for bound, count in zip(h.bounds, h.counts, strict=True)
    ]
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", float(h.count)))
    return buckets


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cleancut_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "cleancut_http_request_duration_seconds",
            "Time to the response's first byte",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=self.registry,
        )

    def watch(self, stats: Callable[[], ServiceStats]) -> None:
        self.registry.register(_ServiceCollector(stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """ASGI middleware feeding :class:`Metrics` (outermost but for CORS, so it sees 401/429 too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        started = False

        async def send_and_count(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._observe(scope, message["status"], start)
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        except Exception:
            if not started:
                self._observe(scope, 500, start)
            raise

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope.get("method", "GET")
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.duration.labels(method, template).observe(time.perf_counter() - start)
