"""A/B and interleaving experiments: create, list, show, start, stop (admin scope) and results
(read scope). The logic is `serendip.service.experiments`; this router also owns that
service's life: it is made when the app starts and writes its queued exposures when the app
stops (the router's lifespan, nested inside the app's, so the store is still open)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from serendip.service.auth import require
from serendip.service.deps import StoreDep
from serendip.service.experiments import ConflictError, ExperimentService
from serendip.service.routes._params import Id
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.store import Store
from serendip.store.operations import Experiment

__all__ = [
    "ExperimentCreate",
    "ExperimentPublic",
    "ExperimentResultsPublic",
    "ExperimentsPublic",
    "experiment_service",
    "router",
]

log = logging.getLogger("serendip.service")

Status = Literal["draft", "running", "stopped"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    store: Store | None = app.state.store
    runtime: ModelRuntime | None = app.state.runtime
    settings: Settings = app.state.settings
    service: ExperimentService | None = None
    if store is not None and runtime is not None:
        service = ExperimentService(
            store, runtime, log_exposures=settings.log_exposures, metrics=app.state.metrics
        )
        if isinstance(runtime, ModelRuntime) and runtime.store is not store:
            runtime.load_consents(store)  # a runtime made without the store (tests, embedding)
    app.state.experiments = service
    try:
        yield
    finally:
        if service is not None:
            service.close()


router = APIRouter(prefix="/v1/experiments", tags=["experiments"], lifespan=_lifespan)

_ADMIN = [Depends(require("admin"))]
_READ = [Depends(require("read"))]
_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "No such experiment."},
    409: {"description": "The experiment cannot move so now; `detail` says why."},
}


async def experiment_service(request: Request) -> ExperimentService:
    """The app's experiment service (503 before the app has started)."""
    service: ExperimentService | None = getattr(request.app.state, "experiments", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="starting")
    return service


ExperimentsDep = Annotated[ExperimentService, Depends(experiment_service)]


# ----------------------------------------------------------------------------- schemas
class ExperimentCreate(BaseModel):
    """A new experiment: its ID and its spec (`serendip.experiments.spec.ExperimentSpec`)."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: Id = Field(description="Unique ID of the experiment.")
    spec: dict[str, object] = Field(
        description=(
            'The spec: `kind` ("ab" or "interleaving"), `variants` ([{name, share, '
            "model_version}], control first; interleaving: exactly two), `primary_metric` (an "
            "event type), `guardrails`, `window_s` (attribution window), `alpha`, "
            "`sequential`, ... A salt is drawn when none is given."
        )
    )


class ExperimentPublic(BaseModel):
    experiment_id: str = Field(description="The experiment's ID.")
    kind: Literal["ab", "interleaving"] = Field(description="ab or interleaving.")
    status: Status = Field(description="draft, running, stopped.")
    spec: dict[str, object] = Field(description="The validated spec, with its salt.")
    created_at: float = Field(description="Epoch seconds.")
    started_at: float | None = Field(description="Epoch seconds; None until started.")
    stopped_at: float | None = Field(description="Epoch seconds; None until stopped.")


class ExperimentsPublic(BaseModel):
    experiments: list[ExperimentPublic] = Field(description="Oldest first.")


class ExperimentResultsPublic(BaseModel):
    experiment_id: str = Field(description="The experiment's ID.")
    status: str = Field(description="draft, running or stopped (running: results so far).")
    report: dict[str, object] = Field(
        description=(
            "The analysis (`ExperimentReport.to_dict()`): per-variant exposures, users, rates "
            "with confidence intervals, lifts and p-values, the sample-ratio-mismatch check, "
            "guardrails, CUPED, the sequential test when asked for."
        )
    )


def _public(e: Experiment) -> ExperimentPublic:
    return ExperimentPublic.model_validate(
        {
            "experiment_id": e.experiment_id,
            "kind": e.kind,
            "status": e.status,
            "spec": dict(e.spec),
            "created_at": e.created_at,
            "started_at": e.started_at,
            "stopped_at": e.stopped_at,
        }
    )


def _conflict(exc: ConflictError) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))


# ----------------------------------------------------------------------------- routes
@router.post(
    "",
    response_model=ExperimentPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=_ADMIN,
    summary="Create an experiment (draft)",
    responses=_ERRORS,
)
def create(body: ExperimentCreate, store: StoreDep) -> ExperimentPublic:
    """Validate the spec (422 naming each problem; variants must name registered model
    versions) and store it as a draft; 409 when the ID is taken."""
    from serendip.service.experiments import create_experiment

    try:
        return _public(create_experiment(store, body.experiment_id, body.spec))
    except ConflictError as exc:
        raise _conflict(exc) from None


@router.get("", response_model=ExperimentsPublic, dependencies=_READ, summary="List experiments")
def list_experiments(
    store: StoreDep,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="Only experiments in this status.")
    ] = None,
) -> ExperimentsPublic:
    """Every experiment, oldest first."""
    found = store.experiments.list(status_filter)
    return ExperimentsPublic(experiments=[_public(e) for e in found])


@router.get(
    "/{experiment_id}",
    response_model=ExperimentPublic,
    dependencies=_READ,
    summary="One experiment",
    responses=_ERRORS,
)
def get(experiment_id: Id, store: StoreDep) -> ExperimentPublic:
    exp = store.experiments.get(experiment_id)
    if exp is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no experiment '{experiment_id}'")
    return _public(exp)


@router.post(
    "/{experiment_id}/start",
    response_model=ExperimentPublic,
    dependencies=_ADMIN,
    summary="Start an experiment",
    responses=_ERRORS,
)
def start(experiment_id: Id, service: ExperimentsDep) -> ExperimentPublic:
    """Load every variant's model version next to the active one, then start: from now on
    each user's list comes from their variant (A/B) or interleaves both (interleaving). 409
    while another experiment runs, when this one is not a draft, or when a variant's version
    cannot be loaded (the experiment stays a draft)."""
    try:
        started = service.start(experiment_id)
    except ConflictError as exc:
        raise _conflict(exc) from None
    log.info("experiment %s started", experiment_id)
    return _public(started)


@router.post(
    "/{experiment_id}/stop",
    response_model=ExperimentPublic,
    dependencies=_ADMIN,
    summary="Stop an experiment",
    responses=_ERRORS,
)
def stop(experiment_id: Id, service: ExperimentsDep) -> ExperimentPublic:
    """Stop serving variants: every user gets the active version again. 409 unless running."""
    try:
        stopped = service.stop(experiment_id)
    except ConflictError as exc:
        raise _conflict(exc) from None
    log.info("experiment %s stopped", experiment_id)
    return _public(stopped)


@router.get(
    "/{experiment_id}/results",
    response_model=ExperimentResultsPublic,
    dependencies=_READ,
    summary="An experiment's analysis",
    responses=_ERRORS,
)
def results(experiment_id: Id, service: ExperimentsDep) -> ExperimentResultsPublic:
    """The analysis over the experiment's exposures and the events of its period (so far,
    while it runs). 409 before it starts."""
    try:
        report = service.results(experiment_id)
    except ConflictError as exc:
        raise _conflict(exc) from None
    exp = service.store.experiments.get(experiment_id)
    return ExperimentResultsPublic(
        experiment_id=experiment_id,
        status=exp.status if exp is not None else "unknown",
        report=report,
    )
