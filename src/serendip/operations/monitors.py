"""Live quality and drift monitors over a time window of the store.

The current window is `[end - window_hours, end)`; the reference window the `reference_days`
before it. Quality monitors read the exposures (served lists) of the current window and the
events that follow them: an event of user u on item i at time t is an *outcome* of a list served
to u at time s containing i when s <= t <= s + attribution window (every event type counts: a
view of a recommended item is a click-through). Drift monitors compare the events of the two
windows (`serendip.operations.drift`). Every monitor's definition is in
`serendip.operations.config.MONITORS`; thresholds come from `MonitorConfig`.

What `GET /v1/monitors` and `serendip monitors` show.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from serendip.evaluation.audit import long_tail_items
from serendip.evaluation.metrics import gini
from serendip.operations.config import MonitorConfig, MonitorResult, judge
from serendip.operations.drift import drift_monitors
from serendip.operations.traffic import (
    Catalog,
    events_between,
    followed_pairs,
    live_catalog,
    users_with_history,
)
from serendip.store import Store
from serendip.store.operations import Exposure

__all__ = ["MonitorReport", "quality_monitors", "run_monitors"]

_QUALITY = (
    "click_through",
    "catalog_coverage",
    "exposure_gini",
    "novelty",
    "oon_exposure_share",
    "long_tail_exposure_share",
    "oon_engagement_share",
    "empty_list_rate",
    "cold_start_share",
)


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """Every monitor's reading over one window (times in epoch seconds)."""

    window_start: float
    window_end: float
    reference_start: float
    results: tuple[MonitorResult, ...]

    @property
    def out_of_bounds(self) -> list[MonitorResult]:
        return [r for r in self.results if r.out_of_bounds]

    def get(self, name: str) -> MonitorResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)


def run_monitors(
    store: Store, config: MonitorConfig | None = None, *, end: float | None = None
) -> MonitorReport:
    """Read the windows ending at `end` (default: now) from `store` and compute every monitor."""
    config = config or MonitorConfig()
    end = time.time() if end is None else float(end)
    window_s = config.window_hours * 3600.0
    start = end - window_s
    ref_start = start - config.reference_days * 86_400.0
    attribution_s = config.attribution_minutes * 60.0
    catalog = live_catalog(store)
    reference = events_between(store, ref_start, start)
    after = events_between(store, start, end + attribution_s)
    current = after[after["timestamp"] < end]
    exposures = store.exposures.between(start, end)
    results = quality_monitors(
        store,
        exposures,
        after,
        reference,
        catalog,
        config,
        start=start,
        attribution_s=attribution_s,
    )
    results += drift_monitors(
        reference,
        current,
        catalog,
        config,
        reference_hours=config.reference_days * 24.0,
        current_hours=config.window_hours,
    )
    return MonitorReport(start, end, ref_start, tuple(results))


def quality_monitors(
    store: Store,
    exposures: Sequence[Exposure],
    events: pd.DataFrame,
    reference: pd.DataFrame,
    catalog: Catalog,
    config: MonitorConfig,
    *,
    start: float,
    attribution_s: float,
) -> list[MonitorResult]:
    """The quality monitors of `exposures`, with `events` (the window's and those within the
    attribution window after it) as outcomes and `reference` events for item popularity."""
    n = len(exposures)
    if n < config.min_exposures:
        note = f"too few served lists: {n} in the window (at least {config.min_exposures})"
        return [judge(config, name, "quality", None, n, note) for name in _QUALITY]

    # outcome times per (user, item), sorted
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for u, i, t in zip(events["user"], events["item"], events["timestamp"], strict=True):
        times[(str(u), str(i))].append(float(t))
    for v in times.values():
        v.sort()

    users = {e.user for e in exposures}
    follows = followed_pairs(store, users)
    clicked = 0
    attributed: set[tuple[str, str, float]] = set()
    exposed_count: dict[str, int] = defaultdict(int)
    slots = oon_slots = known_author_slots = empty = 0
    for e in exposures:
        if not e.items:
            empty += 1
        hit = False
        for item in e.items:
            exposed_count[item] += 1
            slots += 1
            author = catalog.author.get(item, "")
            if author:
                known_author_slots += 1
                if author != e.user and (e.user, author) not in follows:
                    oon_slots += 1
            ts = times.get((e.user, item))
            if ts:
                lo = bisect.bisect_left(ts, e.at)
                hi = bisect.bisect_right(ts, e.at + attribution_s)
                if hi > lo:
                    hit = True
                    attributed.update((e.user, item, t) for t in ts[lo:hi])
        clicked += hit

    n_catalog = len(catalog)
    live_exposed = [exposed_count.get(i, 0) for i in catalog.category]
    coverage = sum(1 for c in live_exposed if c) / n_catalog if n_catalog else None
    exposure_gini = gini(np.asarray(live_exposed, dtype=np.float64)) if n_catalog else None

    novelty: float | None = None
    if len(reference) and slots:
        pop = reference.groupby("item")["user"].nunique()
        n_pop = int(reference["user"].nunique())
        info = {str(i): -math.log2(max(int(c), 1) / n_pop) for i, c in pop.items()}
        unseen = math.log2(n_pop)
        novelty = sum(info.get(i, unseen) * c for i, c in exposed_count.items()) / slots

    long_tail: float | None = None
    if len(reference) and slots:
        counts = reference.groupby("item").size()
        tail = long_tail_items(counts.to_numpy(dtype=np.float64))
        head = {str(i) for i, t in zip(counts.index, tail, strict=True) if not t}
        long_tail = sum(c for i, c in exposed_count.items() if i not in head) / slots

    oon_engagement: float | None = None
    with_author = [(u, i) for u, i, _ in attributed if catalog.author.get(i, "")]
    if with_author:
        oon = sum(
            1
            for u, i in with_author
            if catalog.author[i] != u and (u, catalog.author[i]) not in follows
        )
        oon_engagement = oon / len(with_author)

    warm = users_with_history(store, users, start)
    return [
        judge(config, "click_through", "quality", clicked / n, n),
        judge(config, "catalog_coverage", "quality", coverage, n),
        judge(config, "exposure_gini", "quality", exposure_gini, n),
        judge(config, "novelty", "quality", novelty, n),
        judge(
            config,
            "oon_exposure_share",
            "quality",
            oon_slots / known_author_slots if known_author_slots else None,
            n,
        ),
        judge(config, "long_tail_exposure_share", "quality", long_tail, n),
        judge(config, "oon_engagement_share", "quality", oon_engagement, len(with_author)),
        judge(config, "empty_list_rate", "quality", empty / n, n),
        judge(config, "cold_start_share", "quality", 1.0 - len(warm) / len(users), len(users)),
    ]
