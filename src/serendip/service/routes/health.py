"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from serendip.service.auth import require
from serendip.service.bootstrap import BootstrapStatus
from serendip.service.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import HealthPublic, ReadyPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness")
def healthz() -> HealthPublic:
    """200 while the process answers (even before a model is active)."""
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    summary="Readiness",
    responses={503: {"model": ReadyPublic, "description": "No model is active yet."}},
)
def readyz(request: Request) -> JSONResponse:
    """200 once a model version is active and serving; 503 (with the reason) before. On a first
    start, `stage` says what it is doing, and `upgrading_to` names the default model being fitted
    while a fast model serves."""
    runtime: ModelRuntime | None = getattr(request.app.state, "runtime", None)
    snap = runtime.snapshot if runtime is not None else None
    boot: BootstrapStatus | None = getattr(request.app.state, "bootstrap", None)
    stage = boot.describe() if boot is not None else None
    upgrading = boot.upgrading_to if boot is not None else None
    worker = request.app.state.settings.worker_index
    if snap is None:
        reason = (
            f"first start: {stage}"
            if stage is not None
            else request.app.state.not_ready_reason or "no model is active"
        )
        body = ReadyPublic(
            ready=False, model_version=None, stage=stage, reason=reason, worker=worker
        )
        return JSONResponse(body.model_dump(), status_code=503)
    name = getattr(snap, "metadata", {}).get("model")
    body = ReadyPublic(
        ready=True,
        model_version=snap.version,
        model=None if name is None else str(name),
        upgrading_to=upgrading,
        stage=stage,
        worker=worker,
    )
    return JSONResponse(body.model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require("read"))],
)
def metrics(request: Request) -> Response:
    """Request latency per route, errors, recommendations served, events ingested, the active
    model version, the candidate-source mix and the serving paths (cached, precomputed,
    incremental, full), in the Prometheus text format."""
    m: ServiceMetrics = request.app.state.metrics
    runtime: ModelRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        m.set_model_version(runtime.active_version)
        snap = runtime.snapshot
        cache = snap.cache if snap is not None else None
        m.set_serving_paths(dict(cache.paths) if cache is not None else {})
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
