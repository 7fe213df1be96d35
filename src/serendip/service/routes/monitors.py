"""`GET /v1/monitors`: every live quality and drift monitor with its value, its thresholds and
whether it is out of bounds (read scope). Computed on request from the store
(`serendip.operations.monitors.run_monitors`) with the thresholds of `settings.monitors_file`
(built-in ones without it); the `/metrics` gauges take the same values."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from serendip.errors import ConfigError
from serendip.operations.config import MonitorResult, load_monitor_config
from serendip.operations.monitors import run_monitors
from serendip.service.auth import require
from serendip.service.deps import MetricsDep, SettingsDep, StoreDep

__all__ = ["MonitorPublic", "MonitorsPublic", "router"]

router = APIRouter(prefix="/v1", tags=["monitors"], dependencies=[Depends(require("read"))])


class MonitorPublic(BaseModel):
    name: str
    kind: str = Field(description="quality (served lists and outcomes) or drift (events).")
    description: str
    value: float | None = Field(description="None: too little data to judge (see note).")
    min: float | None
    max: float | None
    out_of_bounds: bool
    n: int = Field(description="Observations the value rests on (served lists or events).")
    note: str


class MonitorsPublic(BaseModel):
    window_start: float
    window_end: float
    reference_start: float
    out_of_bounds: list[str] = Field(description="Names of the monitors out of bounds.")
    monitors: list[MonitorPublic]


def monitor_public(r: MonitorResult) -> MonitorPublic:
    return MonitorPublic(
        name=r.name,
        kind=r.kind,
        description=r.description,
        value=r.value,
        min=r.bound.min,
        max=r.bound.max,
        out_of_bounds=r.out_of_bounds,
        n=r.n,
        note=r.note,
    )


@router.get(
    "/monitors",
    response_model=MonitorsPublic,
    summary="Live quality and drift monitors",
    responses={503: {"description": "The monitors file is not valid."}},
)
def monitors(
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    end: float | None = Query(
        default=None, description="End of the window (epoch seconds); default: now.", gt=0
    ),
) -> MonitorsPublic:
    """Every monitor over the window ending at `end`, and which are out of bounds."""
    try:
        config = load_monitor_config(settings.monitors_file)
    except ConfigError as exc:  # the server's configuration, not the caller's mistake
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    report = run_monitors(store, config, end=end)
    if end is None:
        metrics.observe_monitors(report.results)
    return MonitorsPublic(
        window_start=report.window_start,
        window_end=report.window_end,
        reference_start=report.reference_start,
        out_of_bounds=[r.name for r in report.out_of_bounds],
        monitors=[monitor_public(r) for r in report.results],
    )
