"""Model versions: list with metrics, lineage, activate (atomic hot swap), roll back. Admin scope.

Activation loads and validates the new version *before* anything changes: a version that fails
leaves the current one serving, is marked failed in the store, and the error is in the 409
response and the log. A version activated by another process (`serendip retrain`, `serendip
rollback`, `serendip promote`) is swapped in by the server's watcher (`serendip.service.watcher`)
through the same `swap_in`."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel
from starlette.datastructures import State

from serendip.errors import SerendipError
from serendip.service.auth import require
from serendip.service.deps import MetricsDep, RuntimeDep, StoreDep
from serendip.service.metrics import ServiceMetrics
from serendip.service.routes._params import Id
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import ModelActivatePublic, ModelsPublic, ModelVersionPublic
from serendip.store import ModelVersion, Store

log = logging.getLogger("serendip.service")

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(require("admin"))])

_CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"description": "The version failed to load or validate; the old one serves."}
}


def _public(v: ModelVersion, active: str | None) -> ModelVersionPublic:
    return ModelVersionPublic(
        version=v.version,
        name=v.name,
        active=v.version == active,
        metrics=dict(v.metrics or {}),
        created_at=v.created_at,
        path=str(v.path),
        status=v.status,
        error=v.error,
    )


@router.get("", response_model=ModelsPublic, summary="List model versions")
def list_models(store: StoreDep, runtime: RuntimeDep) -> ModelsPublic:
    """Every registered version with its metrics, newest first, and which one serves."""
    active = runtime.active_version
    versions = sorted(store.models.list(), key=lambda v: v.created_at, reverse=True)
    return ModelsPublic(active=active, versions=[_public(v, active) for v in versions])


def swap_in(
    state: State,
    store: Store,
    runtime: ModelRuntime,
    metrics: ServiceMetrics,
    target: ModelVersion,
) -> str | None:
    """Load `target` into the runtime (atomic swap) and return the version it replaced; on
    failure count it, mark the version failed in the store and raise `SerendipError` (the old
    version keeps serving). `state`: the app's state (its readiness is set)."""
    previous = runtime.active_version
    try:
        runtime.load(Path(target.path), target.version)
    except SerendipError as exc:
        metrics.model_swaps.labels("failed").inc()
        log.error(
            "model version %s failed to load, %s keeps serving: %s", target.version, previous, exc
        )
        with contextlib.suppress(SerendipError):
            store.models.mark_failed(target.version, str(exc))
        raise SerendipError(
            f"model version '{target.version}' failed to load; '{previous}' keeps serving: {exc}"
        ) from exc
    metrics.model_swaps.labels("ok").inc()
    metrics.set_model_version(target.version, model=target.name, registered_at=target.created_at)
    state.not_ready_reason = None
    log.info("model version %s (%s) now serving (was %s)", target.version, target.name, previous)
    return previous


def swap(
    request: Request,
    store: Store,
    runtime: ModelRuntime,
    metrics: ServiceMetrics,
    target: ModelVersion,
) -> str | None:
    """`swap_in` for a request: a failure answers 409 (the old version keeps serving)."""
    try:
        return swap_in(request.app.state, store, runtime, metrics, target)
    except SerendipError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


class ModelLineagePublic(BaseModel):
    """Where a version came from: data window, holdout, parameters, both models' metrics, the
    gate's decision, code version, parent version (empty for versions registered without)."""

    version: str
    name: str
    status: str
    lineage: dict[str, Any]


@router.get(
    "/{version}/lineage",
    response_model=ModelLineagePublic,
    summary="A model version's lineage",
    responses={404: {"description": "No such version."}},
)
def lineage(version: Id, store: StoreDep) -> ModelLineagePublic:
    """The lineage the retraining gate recorded for `version`."""
    target = store.models.get(version)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model version '{version}'")
    return ModelLineagePublic(
        version=target.version, name=target.name, status=target.status, lineage=target.lineage
    )


@router.post(
    "/{version}/activate",
    response_model=ModelActivatePublic,
    summary="Activate a model version (hot swap)",
    responses={404: {"description": "No such version."}, **_CONFLICT},
)
def activate(
    version: Id,
    request: Request,
    store: StoreDep,
    runtime: RuntimeDep,
    metrics: MetricsDep,
) -> ModelActivatePublic:
    """Load, validate and swap in `version` atomically: requests in flight finish on the old
    one, later ones get the new one, none fails."""
    target = store.models.get(version)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model version '{version}'")
    with request.app.state.swap_lock:
        previous = swap(request, store, runtime, metrics, target)
        store.models.activate(version)
    return ModelActivatePublic(active=version, previous=previous)


@router.post(
    "/rollback",
    response_model=ModelActivatePublic,
    summary="Roll back to the previous version",
    responses={**_CONFLICT},
)
def rollback(
    request: Request,
    store: StoreDep,
    runtime: RuntimeDep,
    metrics: MetricsDep,
) -> ModelActivatePublic:
    """Re-activate the version that served before the current one (409 if there is none)."""
    with request.app.state.swap_lock:
        current = store.models.active()
        try:
            target = store.models.rollback()
        except SerendipError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
        try:
            previous = swap(request, store, runtime, metrics, target)
        except HTTPException:
            if current is not None:  # the store moved back; the runtime did not: undo
                store.models.activate(current.version)
            raise
    return ModelActivatePublic(active=target.version, previous=previous)
