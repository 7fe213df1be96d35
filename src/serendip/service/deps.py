"""Dependencies every route shares: the app's store, runtime, settings and metrics (declared in
a route as the `Annotated` aliases `StoreDep`, `RuntimeDep`, `ServingRuntimeDep`, `SettingsDep`,
`MetricsDep`), and the error shape for limits the settings set (FastAPI's own 422 shape, so
clients parse one).

The dependencies are `async def` although they do no I/O: FastAPI runs a sync dependency on the
thread pool, a thread hop per dependency per request; these only read `app.state`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel

from serendip.service.metrics import ServiceMetrics
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Limits, Settings
from serendip.store import Store

__all__ = [
    "MetricsDep",
    "RuntimeDep",
    "ServingRuntimeDep",
    "SettingsDep",
    "StoreDep",
    "check_k",
    "check_lengths",
    "enforce_limits",
    "field_error",
    "get_metrics",
    "get_runtime",
    "get_settings",
    "get_store",
    "notify",
    "serving_runtime",
]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


async def get_store(request: Request) -> Store:
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="store is not open yet")
    return store


async def get_runtime(request: Request) -> ModelRuntime:
    runtime: ModelRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="runtime is not up yet")
    return runtime


async def serving_runtime(request: Request) -> ModelRuntime:
    """The runtime, or 503 when no model is active yet (say, the first start still fitting)."""
    runtime = await get_runtime(request)
    if runtime.active_version is None:
        reason = getattr(request.app.state, "not_ready_reason", None) or "no model is active"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"not ready: {reason}; see /readyz",
            headers={"Retry-After": "5"},
        )
    return runtime


# The route dependencies, as `Annotated` aliases: a route declares `store: StoreDep`.
StoreDep = Annotated[Store, Depends(get_store)]
RuntimeDep = Annotated[ModelRuntime, Depends(get_runtime)]
#: The runtime with a model active (503 before: see `serving_runtime`).
ServingRuntimeDep = Annotated[ModelRuntime, Depends(serving_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


def check_k(k: int, settings: Settings) -> None:
    """422 naming `k` when it is above this server's limit (`Settings.limits.max_k`)."""
    if k > settings.limits.max_k:
        raise field_error(
            ("query", "k"), f"k={k} is above this server's limit of {settings.limits.max_k}"
        )


def field_error(loc: tuple[str | int, ...], msg: str, code: int = 422) -> HTTPException:
    """An HTTP error naming the field, in FastAPI's validation-error shape."""
    detail: list[dict[str, object]] = [{"loc": list(loc), "msg": msg, "type": "value_error"}]
    return HTTPException(code, detail=detail)


_TEXT_FIELDS = frozenset({"title", "text"})


def check_lengths(value: object, limits: Limits, loc: tuple[str | int, ...] = ("body",)) -> None:
    """Apply the server's string and list limits (`Settings.limits`, possibly stricter than the
    schema's hard caps) to a parsed body; 422 naming the first field over its limit."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            check_lengths(getattr(value, name), limits, (*loc, name))
    elif isinstance(value, str):
        text = loc[-1] in _TEXT_FIELDS
        limit = limits.max_text_length if text else limits.max_string_length
        if len(value) > limit:
            raise field_error(loc, f"{len(value)} characters; the limit is {limit}")
    elif isinstance(value, (list, tuple)):
        if len(value) > limits.max_list_length and loc[-1] not in ("events", "items"):
            raise field_error(loc, f"{len(value)} entries; the limit is {limits.max_list_length}")
        if value and isinstance(value[0], (str, BaseModel, list, tuple)):
            for i, v in enumerate(value):
                check_lengths(v, limits, (*loc, i))


def enforce_limits(body: BaseModel, settings: Settings) -> None:
    """`check_lengths` when the settings are stricter than the schema's caps (else a no-op, so
    the common case costs nothing on a 10,000-event batch)."""
    from serendip.service.schemas import MAX_ID_LENGTH, MAX_LIST_LENGTH, MAX_TEXT_LENGTH

    lim = settings.limits
    if (
        lim.max_string_length >= MAX_ID_LENGTH
        and lim.max_text_length >= MAX_TEXT_LENGTH
        and lim.max_list_length >= MAX_LIST_LENGTH
    ):
        return
    check_lengths(body, lim)


_log = logging.getLogger("serendip.service")


def notify(what: str, call: Callable[[], object]) -> None:
    """Tell the runtime about a change already stored; its failure is logged, not answered with
    an error, because the change itself succeeded and is durable."""
    try:
        call()
    except Exception:
        _log.exception("online update (%s) failed", what)
