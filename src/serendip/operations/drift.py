"""Drift monitors: is the current window's traffic shaped like the reference window's?

Four views of the events, each compared current vs reference:
- the event rate (events per hour; a ratio, bounded both ways) and the event-type mix (PSI);
- where traffic goes among items: PSI over *reference popularity bins* (items sorted by their
  reference events and cut into `popularity_bins` bins of about equal reference mass, plus one
  bin for items the reference window never saw), so traffic moving from the head to other items
  shows even when every single item is rare; and the Jensen-Shannon distance of the item
  distributions;
- the category mix (PSI and Jensen-Shannon).

PSI = sum_i (c_i - r_i) ln(c_i / r_i) over shares floored at 1e-4 (under 0.1: stable, 0.1-0.25:
moderate, above 0.25: major shift). Jensen-Shannon distance is scipy's (base 2, in [0, 1]).
A comparison with fewer than `min_events` events in either window gives no value.

>>> round(psi({"a": 50, "b": 50}, {"a": 50, "b": 50}), 6)
0.0
>>> psi({"a": 90, "b": 10}, {"a": 10, "b": 90}) > 0.25
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from serendip.operations.config import MonitorConfig, MonitorResult, judge
from serendip.operations.traffic import Catalog, counts

__all__ = ["drift_monitors", "js_distance", "popularity_bins", "psi"]

_FLOOR = 1e-4


def _aligned(ref: Mapping[str, float], cur: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref) | set(cur))
    r = np.array([ref.get(k, 0.0) for k in keys], dtype=np.float64)
    c = np.array([cur.get(k, 0.0) for k in keys], dtype=np.float64)
    return r, c


def psi(ref: Mapping[str, float], cur: Mapping[str, float]) -> float:
    """Population stability index of `cur` against `ref` (counts or shares per category)."""
    r, c = _aligned(ref, cur)
    if r.sum() <= 0 or c.sum() <= 0:
        return 0.0
    r = np.maximum(r / r.sum(), _FLOOR)
    c = np.maximum(c / c.sum(), _FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref: Mapping[str, float], cur: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2) between the two distributions, in [0, 1]."""
    r, c = _aligned(ref, cur)
    if r.sum() <= 0 or c.sum() <= 0:
        return 0.0
    return float(jensenshannon(r, c, base=2.0))


def popularity_bins(ref_counts: Mapping[str, int], n_bins: int) -> dict[str, int]:
    """Item -> bin: items sorted by reference count (most first), cut where the cumulative
    share of reference events crosses each 1/n_bins step (a bin holds about 1/n_bins of the
    reference mass; one very popular item may fill several steps alone)."""
    if not ref_counts:
        return {}
    items = sorted(ref_counts, key=lambda i: (-ref_counts[i], i))
    mass = np.array([ref_counts[i] for i in items], dtype=np.float64)
    before = np.concatenate([[0.0], np.cumsum(mass)[:-1]]) / mass.sum()
    bins = np.minimum((before * n_bins).astype(np.int64), n_bins - 1)
    return {item: int(b) for item, b in zip(items, bins, strict=True)}


def _binned(events: pd.Series, bins: Mapping[str, int], n_bins: int) -> dict[str, int]:
    """Events per popularity bin; items outside `bins` go to the bin 'unseen'."""
    out: dict[str, int] = {}
    for item, n in counts(events.to_numpy()).items():
        b = bins.get(item)
        key = "unseen" if b is None else f"bin{b:03d}"
        out[key] = out.get(key, 0) + n
    for b in range(n_bins):
        out.setdefault(f"bin{b:03d}", 0)
    return out


def drift_monitors(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    catalog: Catalog,
    config: MonitorConfig,
    *,
    reference_hours: float,
    current_hours: float,
) -> list[MonitorResult]:
    """The drift monitors of `current` events against `reference` events (frames with columns
    user, item, event, timestamp; windows of the given lengths)."""
    n_ref, n_cur = len(reference), len(current)
    n = min(n_ref, n_cur)
    names = (
        "event_rate_ratio",
        "event_type_psi",
        "item_popularity_psi",
        "item_js",
        "category_psi",
        "category_js",
    )
    if n < config.min_events:
        note = (
            f"too few events to compare: {n_cur} in the window, {n_ref} in the reference "
            f"(at least {config.min_events} each)"
        )
        out = [judge(config, name, "drift", None, n, note) for name in names]
        if n_ref >= config.min_events:  # an empty window is itself a rate drop
            rate = (n_cur / current_hours) / (n_ref / reference_hours)
            out[0] = judge(config, "event_rate_ratio", "drift", rate, n_ref)
        return out
    rate = (n_cur / current_hours) / (n_ref / reference_hours)
    ref_items, cur_items = counts(reference["item"].to_numpy()), counts(current["item"].to_numpy())
    bins = popularity_bins(ref_items, config.popularity_bins)
    ref_bins = _binned(reference["item"], bins, config.popularity_bins)
    cur_bins = _binned(current["item"], bins, config.popularity_bins)

    def categories(frame: pd.DataFrame) -> dict[str, int]:
        cats = frame["item"].map(lambda i: catalog.category.get(i, "") or "(none)")
        return counts(cats.to_numpy())

    ref_cat, cur_cat = categories(reference), categories(current)
    ref_types, cur_types = (
        counts(reference["event"].to_numpy()),
        counts(current["event"].to_numpy()),
    )
    return [
        judge(config, "event_rate_ratio", "drift", rate, n),
        judge(config, "event_type_psi", "drift", psi(ref_types, cur_types), n),
        judge(config, "item_popularity_psi", "drift", psi(ref_bins, cur_bins), n),
        judge(config, "item_js", "drift", js_distance(ref_items, cur_items), n),
        judge(config, "category_psi", "drift", psi(ref_cat, cur_cat), n),
        judge(config, "category_js", "drift", js_distance(ref_cat, cur_cat), n),
    ]
