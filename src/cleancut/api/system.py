"""Probes, metrics and the model list: ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/models``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cleancut.api.auth import Caller
from cleancut.api.context import ApiContext
from cleancut.api.errors import responses
from cleancut.api.metrics import CONTENT_TYPE, Metrics
from cleancut.api.schemas import Health, Ready


class ModelInfo(BaseModel):
    name: str
    description: str
    default: bool
    loaded: bool


class ModelList(BaseModel):
    models: list[ModelInfo]


def build_router(ctx: ApiContext, metrics: Metrics) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/healthz",
        response_model=Health,
        response_model_exclude_none=True,
        tags=["probes"],
        summary="The process is up",
    )
    def healthz() -> Health:
        # Liveness: always 200 (a database outage must not restart API nodes); the backend's
        # servers are reported for the operator, and /readyz turns 503 on them.
        return Health(status="ok", checks=ctx.service.health() or None)

    @router.get(
        "/readyz",
        response_model=Ready,
        responses={503: {"model": Ready, "description": "The model is not loaded yet"}},
        tags=["probes"],
        summary="The default model is loaded and jobs run",
    )
    def readyz() -> JSONResponse:
        checks = ctx.service.health()  # distributed: database, broker, store, events
        ready = ctx.service.ready() and all(state == "ok" for state in checks.values())
        model = ctx.settings.default_model
        runtime = ctx.pool.get(model).runtime if model in ctx.pool.loaded() else None
        stats = ctx.service.stats()
        body = Ready(
            ready=ready,
            model=model,
            runtime=runtime,
            precision=ctx.settings.inference.precision,
            queue_depth=stats.queue_depth,
            workers=stats.workers,
            checks=checks,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
        tags=["probes"],
        summary="Prometheus metrics",
    )
    async def prometheus() -> Response:
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    @router.get(
        "/v1/models",
        response_model=ModelList,
        responses=responses(401, 429),
        summary="Models this server can run",
    )
    def models(_client: Caller) -> ModelList:
        loaded = set(ctx.pool.loaded())
        default = ctx.settings.default_model
        return ModelList(
            models=[
                ModelInfo(
                    name=spec.name,
                    description=spec.description,
                    default=spec.name == default,
                    loaded=spec.name in loaded,
                )
                for spec in ctx.pool.registry.all()
            ]
        )

    return router
