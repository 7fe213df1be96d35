"""Event ingestion: one event or a batch, idempotent by event_id, durable once acknowledged.

With a pseudonym secret the events' user IDs are stored as pseudonyms; events of an erased user
are dropped (counted in `received`, neither accepted nor duplicates), so erased data does not
come back through ingestion."""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request

from serendip.service.auth import require
from serendip.service.deps import (
    MetricsDep,
    RuntimeDep,
    SettingsDep,
    StoreDep,
    enforce_limits,
    field_error,
    notify,
)
from serendip.service.follower import StoreFollower
from serendip.service.metrics import ServiceMetrics
from serendip.service.privacy import PrivacyContext, PrivacyDep
from serendip.service.runtime import ModelRuntime
from serendip.service.schemas import EventBatchCreate, EventCreate, IngestPublic
from serendip.store import EventIn, Store

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require("write"))])


def ingest(
    events: Sequence[EventCreate],
    store: Store,
    runtime: ModelRuntime,
    metrics: ServiceMetrics,
    privacy: PrivacyContext | None = None,
    follower: StoreFollower | None = None,
) -> IngestPublic:
    """Store first (one transaction), then update the online state: once the response is sent
    the events survive a crash, and the user's next recommendations already reflect them.
    `follower` (several servers on one store) is told these are applied here."""
    now = time.time()
    user = (lambda raw: raw) if privacy is None else privacy.pseudonyms.user
    rows = [
        EventIn(
            event_id=e.event_id,
            user=user(e.user),
            item=e.item,
            event=e.event,
            timestamp=e.timestamp if e.timestamp is not None else now,
            value=e.value,
        )
        for e in events
    ]
    received = len(rows)
    erased = privacy.erased(r.user for r in rows) if privacy is not None else set()
    if erased:
        rows = [r for r in rows if r.user not in erased]
        metrics.events.labels("erased").inc(received - len(rows))
    if follower is not None:
        follower.mark(r.event_id for r in rows)  # this process applies them itself
    result = store.events.add_batch(rows)
    metrics.observe_ingest(result.accepted, result.duplicates)
    if result.accepted_rows is not None:  # some were already stored: apply only the new ones
        rows = [rows[i] for i in result.accepted_rows]
    if result.accepted:
        notify("events", lambda: runtime.on_events(rows))
    return IngestPublic(received=received, accepted=result.accepted, duplicates=result.duplicates)


@router.post("/events", response_model=IngestPublic, summary="Send one event")
def post_event(
    event: EventCreate,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    privacy: PrivacyDep,
    request: Request,
) -> IngestPublic:
    """Store one event. Repeating an `event_id` is acknowledged as a duplicate and ignored."""
    enforce_limits(event, settings)
    return ingest([event], store, runtime, metrics, privacy, request.app.state.follower)


@router.post("/events/batch", response_model=IngestPublic, summary="Send up to 10,000 events")
def post_events(
    batch: EventBatchCreate,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    privacy: PrivacyDep,
    request: Request,
) -> IngestPublic:
    """Store a batch in one transaction: all of it is durable when this answers, or none of it
    (any invalid event rejects the batch with 422 naming it)."""
    if len(batch.events) > settings.limits.max_batch:
        raise field_error(
            ("body", "events"),
            f"{len(batch.events)} events; this server takes at most {settings.limits.max_batch}",
            413,
        )
    enforce_limits(batch, settings)
    return ingest(batch.events, store, runtime, metrics, privacy, request.app.state.follower)
