"""Retention: events and exposures older than a window are deleted.

`purge(store, older_than_days)` deletes, in one transaction per table, every event whose
timestamp and every exposure whose time is older than `now - older_than_days` days. How it is
scheduled: the server runs it once a day when `Settings.retention_days` is set
(`serendip.service.privacy.RetentionSchedule`), and `serendip purge --db URL --older-than-days N`
does the same from cron where no server runs. A model fitted before a purge still holds what it
learnt from the purged events until the next fit; fits read the store, so they never see them
again.

Demographic attributes: no model needs one. What models read of a user besides their
interactions and follows is `interests` (declared topics, for the cold start of the content and
pipeline models) and `private` (the privacy flag); age, gender, location and the like are
neither stored (the `users` table has `user_id`, `interests`, `private`, `created_at`) nor read
(`tests/privacy/test_retention.py` checks the user columns every model and source reads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete

from serendip.errors import ConfigError
from serendip.store import Store
from serendip.store.operations import EXPOSURES
from serendip.store.repositories import EVENTS

__all__ = ["DAY", "PurgeResult", "purge"]

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge deleted, and the cut-off (epoch seconds) it applied."""

    cutoff: float
    events: int
    exposures: int


def purge(store: Store, older_than_days: float, *, now: float | None = None) -> PurgeResult:
    """Delete events (by their timestamp) and exposures (by when they were served) older than
    `older_than_days` days before `now` (default: the current time)."""
    if not older_than_days > 0:
        raise ConfigError(f"the retention window must be positive, got {older_than_days} days")
    cutoff = (time.time() if now is None else now) - older_than_days * DAY
    with store.database.write() as conn:
        n_events = conn.execute(delete(EVENTS).where(EVENTS.c.timestamp < cutoff)).rowcount
    with store.database.write() as conn:
        n_exp = conn.execute(delete(EXPOSURES).where(EXPOSURES.c.at < cutoff)).rowcount
    return PurgeResult(cutoff, int(n_events), int(n_exp))
