"""``create_app``: the composition root of the server.

Everything is built here, from one ``Settings``, when the app is created (never at import):
the model pool, the outbound-HTTP policy, the job service (the embedded SQLite + folder +
thread-pool default unless one is injected), auth, metrics and the routers. The lifespan starts
the service (recovering jobs a crash interrupted) and stops it on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from cleancut import __version__
from cleancut.api import compat, errors, native, system, web
from cleancut.api.auth import Authenticator, KeyRing, RateLimiter, RateLimitHeaders
from cleancut.api.context import ApiContext
from cleancut.api.metrics import HttpMetrics, Metrics
from cleancut.api.schemas import EffectsRequest, JobCreate
from cleancut.net import NetPolicy

if TYPE_CHECKING:
    from cleancut.config import Settings
    from cleancut.core.predict import ModelPool
    from cleancut.jobs.service import JobService

log = logging.getLogger("cleancut.server")

DESCRIPTION = """Background removal as durable jobs.

Submit an image (`POST /v1/jobs`, multipart or JSON with a `url`), follow it
(`GET /v1/jobs/{id}` or the SSE stream at `/events`), then download the result, the mask
or the original. `POST /v1/remove` does all of it in one synchronous call.

Authenticate with `x-api-key: KEY` or `Authorization: Bearer KEY` when the server has keys.
Every error has the shape `{"error": {"code", "message", "hint"?, "field"?}}`.
"""
EXPOSED_HEADERS = [
    "Retry-After",
    "ETag",
    "Location",
    "Content-Disposition",
    "Server-Timing",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Cleancut-Job-Id",
]


def net_policy(settings: Settings) -> NetPolicy:
    return NetPolicy(
        allow_private=settings.server.allow_private_networks,
        max_bytes=settings.server.max_upload_bytes,
    )


def local_service(settings: Settings, pool: ModelPool, policy: NetPolicy) -> JobService:
    from cleancut.jobs.local import LocalConfig, build_local_service

    server = settings.server
    config = LocalConfig(
        data_dir=server.data_dir,
        workers=server.workers,
        queue_size=server.queue_size,
        max_attempts=server.max_attempts,
        retention_seconds=server.retention_seconds,
        job_timeout=server.job_timeout,
        warm_models=(settings.default_model,),
    )
    service: JobService = build_local_service(config, pool, policy, log.info)
    return service


def distributed_service(settings: Settings, pool: ModelPool, policy: NetPolicy) -> JobService:
    """An API node only: jobs in PostgreSQL, run by `cleancut worker` processes."""
    from cleancut.jobs.distributed.service import build_distributed_service

    def models() -> list[str]:
        return [spec.name for spec in pool.registry.all()]

    config = settings.distributed_config()
    service: JobService = build_distributed_service(config, pool, policy, log.info, models=models)
    return service


def backend_service(settings: Settings, pool: ModelPool, policy: NetPolicy) -> JobService:
    match settings.server.backend:
        case "local":
            return local_service(settings, pool, policy)
        case "distributed":
            return distributed_service(settings, pool, policy)


def create_app(
    settings: Settings,
    *,
    service: JobService | None = None,
    pool: ModelPool | None = None,
    heartbeat: float = 15.0,
) -> FastAPI:
    server = settings.server
    # API nodes of the distributed backend run no jobs of their own.
    jobs = server.workers if server.backend == "local" else 1
    pool = pool if pool is not None else settings.model_pool(log.info, jobs=jobs)
    policy = net_policy(settings)
    service = service if service is not None else backend_service(settings, pool, policy)
    limiter = RateLimiter(server.rate_limit.per_minute, server.rate_limit.burst)
    auth = Authenticator(KeyRing(server.api_key_hashes), limiter)
    ctx = ApiContext(settings, service, pool, auth, heartbeat)
    metrics = Metrics()
    metrics.watch(service.stats)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="cleancut",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=errors.responses(500),
    )
    app.state.cleancut = ctx
    app.state.authenticator = auth
    extra = compat.vendors(ctx, policy)
    errors.install(app, [(prefix, v.render_error) for v in extra for prefix in v.prefixes])
    app.include_router(native.build_router(ctx, policy), tags=["jobs"])
    for vendor in extra:
        app.include_router(vendor.router, tags=[vendor.tag])
    app.include_router(system.build_router(ctx, metrics))
    if server.web:
        app.include_router(web.build_router())
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(HttpMetrics, metrics=metrics)
    if server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["x-api-key", "authorization", "content-type", "idempotency-key"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Routes that stream their bodies describe them by reference; add those schemas."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (JobCreate, EffectsRequest):
            doc = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
            components.update(doc.pop("$defs", {}))
            components[model.__name__] = doc
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
