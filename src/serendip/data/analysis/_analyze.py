"""`analyze_dataset`: every statistic of the report, computed column-wise with NumPy.

Cost: one sort of the pair keys shared by all sections, a few linear passes over the columns,
a Python pass over the item texts for the metadata section and a sampled in-network check.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np
import pandas as pd

from serendip.data.analysis._model import (
    ActivityStats,
    ColdCount,
    ColdStartStats,
    Conversion,
    Counts,
    DatasetAnalysis,
    EventFunnel,
    Growth,
    MetadataStats,
    QualityIssue,
    TemporalStats,
    ValueStats,
)
from serendip.data.analysis._pairs import PairIndex
from serendip.data.analysis._quality import quality_issues
from serendip.data.analysis._social import in_network_stats, social_stats
from serendip.data.analysis._stats import (
    distribution,
    gini,
    iso,
    linear_histogram,
    log_histogram,
    ratio,
)
from serendip.data.dataset import EVENT_CODES, EVENT_TYPES, Dataset
from serendip.errors import ConfigError

__all__ = ["ProgressCallback", "analyze_dataset"]

#: progress(step description, steps done, total steps); called before each step and at the end.
ProgressCallback = Callable[[str, int, int], None]

COLD_THRESHOLDS: tuple[int, ...] = (1, 5, 10)
#: Funnel transitions reported when both event types occur.
FUNNEL: tuple[tuple[str, str], ...] = (
    ("view", "click"),
    ("view", "like"),
    ("like", "comment"),
    ("like", "share"),
    ("view", "share"),
)
_WEEK = 7 * 86_400
#: 1970-01-05, the first Monday of the epoch: weeks start on Mondays, as ISO weeks do.
_FIRST_MONDAY = 4 * 86_400
#: Growth switches from weekly to monthly periods beyond this many weeks (~10 years).
_MAX_WEEKS = 520


def analyze_dataset(
    ds: Dataset,
    *,
    in_network_sample: int = 200_000,
    seed: int = 0,
    now: float | None = None,
    progress: ProgressCallback | None = None,
    extra_issues: Sequence[QualityIssue] = (),
) -> DatasetAnalysis:
    """Measure one dataset (any loaded `Dataset`): sizes, distributions, funnel, time,
    metadata, social graph, quality.

    in_network_sample / seed: the uniform sample of rows the "followee interacted before" check
    uses when an exact pass would exceed 30M lookups (see `InNetworkStats`).
    now: epoch seconds after which a timestamp counts as "in the future" (default: the clock;
    pass it for reproducible findings). progress: callback (step, done, total). extra_issues:
    findings from outside the dataset (rows a loader dropped), listed with the quality ones.

    Returns a frozen `DatasetAnalysis`; sections the data cannot support are None with the
    reason in `.absent`. Memory peaks at roughly 6 x 8 bytes per interaction.
    """
    if in_network_sample < 1:
        raise ConfigError(f"in_network_sample must be at least 1, got {in_network_sample}")
    now = time.time() if now is None else float(now)
    timings: dict[str, float] = {}
    absent: dict[str, str] = {}
    steps = [
        "pairs",
        "counts",
        "events",
        "values",
        "temporal",
        "metadata",
        "social",
        "in_network",
        "quality",
    ]

    def step(i: int) -> None:
        if progress is not None:
            progress(steps[i] if i < len(steps) else "done", i, len(steps))

    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        t = time.perf_counter()
        timings[name] = round(t - clock, 4)
        clock = t

    step(0)
    pairs = PairIndex.build(ds)
    lap("pairs")

    step(1)
    user_counts = ds.user_counts()
    item_counts = ds.item_counts()
    counts = _counts(ds, pairs, user_counts, item_counts)
    activity = _activity(user_counts, item_counts)
    cold = _cold_start(user_counts, item_counts)
    lap("counts")

    step(2)
    events = _events(ds, pairs)
    lap("events")

    step(3)
    values = _values(ds)
    if values is None:
        absent["values"] = "no interaction carries a value (rating, listen count, ...)"
    lap("values")

    step(4)
    temporal = _temporal(ds, pairs, now=now)
    if temporal is None:
        absent["temporal"] = "no interaction has a timestamp"
    lap("temporal")

    step(5)
    metadata = _metadata(ds)
    lap("metadata")

    step(6)
    social = social_stats(ds) if ds.has_social else None
    if social is None:
        absent["social"] = "the dataset has no social graph (no follow or friend edges)"
    lap("social")

    step(7)
    in_network = None
    if ds.has_social and ds.n_interactions:
        in_network = in_network_stats(ds, pairs, sample_size=in_network_sample, seed=seed)
    else:
        absent["in_network"] = (
            "needs a social graph" if not ds.has_social else "the dataset has no interactions"
        )
    lap("in_network")

    step(8)
    quality = quality_issues(ds, pairs, user_counts, item_counts, now=now, extra=extra_issues)
    lap("quality")
    step(len(steps))

    return DatasetAnalysis(
        name=ds.name,
        generated_at=dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        counts=counts,
        activity=activity,
        cold_start=cold,
        events=events,
        values=values,
        temporal=temporal,
        metadata=metadata,
        social=social,
        in_network=in_network,
        quality=quality,
        absent=absent,
        timings_s=timings,
    )


# --------------------------------------------------------------------------- sections
def _counts(
    ds: Dataset, pairs: PairIndex, user_counts: np.ndarray, item_counts: np.ndarray
) -> Counts:
    n_pairs = len(pairs)
    active_users = int(np.count_nonzero(user_counts))
    active_items = int(np.count_nonzero(item_counts))
    cells = ds.n_users * ds.n_items
    density = ratio(n_pairs, cells)
    return Counts(
        n_users=ds.n_users,
        n_items=ds.n_items,
        n_interactions=ds.n_interactions,
        n_users_with_interactions=active_users,
        n_items_with_interactions=active_items,
        n_unique_pairs=n_pairs,
        n_social_edges=len(ds.social),
        density=density,
        sparsity=None if density is None else 1.0 - density,
        density_active=ratio(n_pairs, active_users * active_items),
        interactions_per_user=ratio(ds.n_interactions, ds.n_users),
        interactions_per_item=ratio(ds.n_interactions, ds.n_items),
    )


def _activity(user_counts: np.ndarray, item_counts: np.ndarray) -> ActivityStats:
    ua = user_counts[user_counts > 0]
    ip = item_counts[item_counts > 0]
    top20: float | None = None
    items80: float | None = None
    curve_x: tuple[float, ...] = ()
    curve_y: tuple[float, ...] = ()
    desc = np.sort(ip)[::-1].astype(np.float64)
    total = float(desc.sum())
    if desc.size:
        cum = np.cumsum(desc) / total
        top = max(1, int(np.ceil(0.2 * desc.size)))
        top20 = float(cum[top - 1])
        # Smallest k with cum[k-1] >= 0.8 (tolerance for float rounding at exact 80%).
        k80 = int(np.searchsorted(cum, 0.8 - 1e-12)) + 1
        items80 = k80 / desc.size
        xs = np.linspace(0.0, 1.0, 101)
        idx = np.ceil(xs * desc.size).astype(np.int64)
        ys = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
        curve_x, curve_y = tuple(round(float(x), 4) for x in xs), tuple(float(y) for y in ys)
    return ActivityStats(
        user_activity=distribution(ua),
        item_popularity=distribution(ip),
        user_activity_histogram=log_histogram(ua),
        item_popularity_histogram=log_histogram(ip),
        gini_user_activity=gini(ua),
        gini_user_activity_all=gini(user_counts),
        gini_item_popularity=gini(ip),
        gini_item_popularity_all=gini(item_counts),
        top20_items_share=top20,
        items_share_for_80pct=items80,
        popularity_curve_x=curve_x,
        popularity_curve_y=curve_y,
    )


def _cold_start(user_counts: np.ndarray, item_counts: np.ndarray) -> ColdStartStats:
    def cold(c: np.ndarray) -> tuple[ColdCount, ...]:
        return tuple(
            ColdCount(t, int(np.count_nonzero(c < t)), ratio(int(np.count_nonzero(c < t)), len(c)))
            for t in COLD_THRESHOLDS
        )

    return ColdStartStats(
        users=cold(user_counts),
        items=cold(item_counts),
        users_without_interactions=int(np.count_nonzero(user_counts == 0)),
        items_never_interacted=int(np.count_nonzero(item_counts == 0)),
    )


def _events(ds: Dataset, pairs: PairIndex) -> EventFunnel:
    ev_counts = np.bincount(ds.interactions.event, minlength=len(EVENT_TYPES))
    present = [e for e in EVENT_TYPES if ev_counts[EVENT_CODES[e]] > 0]
    pair_users = pairs.users
    users: dict[str, int] = {}
    pair_counts: dict[str, int] = {}
    has: dict[str, np.ndarray] = {}
    for e in present:
        mask = (pairs.events & np.uint8(1 << EVENT_CODES[e])) != 0
        has[e] = mask
        pair_counts[e] = int(mask.sum())
        seen = np.zeros(ds.n_users, dtype=bool)
        seen[pair_users[mask]] = True
        users[e] = int(seen.sum())
    conversions = tuple(
        Conversion(
            source=s,
            target=t,
            count_ratio=ratio(int(ev_counts[EVENT_CODES[t]]), int(ev_counts[EVENT_CODES[s]])),
            pair_rate=ratio(int(np.count_nonzero(has[s] & has[t])), pair_counts[s]),
        )
        for s, t in FUNNEL
        if s in has and t in has
    )
    return EventFunnel(
        counts={e: int(ev_counts[EVENT_CODES[e]]) for e in present},
        users=users,
        pairs=pair_counts,
        conversions=conversions,
    )


def _values(ds: Dataset) -> ValueStats | None:
    it = ds.interactions
    v = it.value
    has = ~np.isnan(v)
    n_val = int(has.sum())
    if n_val == 0:
        return None
    x = v[has].astype(np.float64)
    finite = x[np.isfinite(x)]
    dist = distribution(finite)
    by_event = np.bincount(it.event[has], minlength=len(EVENT_TYPES))
    levels: tuple[float, ...] = ()
    level_counts: tuple[int, ...] = ()
    hist = None
    discrete = False
    if finite.size and np.array_equal(finite, np.round(finite)):
        lo, hi = float(finite.min()), float(finite.max())
        if hi - lo <= 1000:
            bc = np.bincount((finite - lo).astype(np.int64))
            nz = np.flatnonzero(bc)
            if len(nz) <= 20:
                discrete = True
                levels = tuple(float(lo + k) for k in nz)
                level_counts = tuple(int(bc[k]) for k in nz)
    if not discrete and finite.size:
        med = dist.median or 0.0
        heavy = (dist.min or 0.0) > 0 and med > 0 and (dist.max or 0.0) / med > 50
        hist = (
            log_histogram(finite) if heavy else linear_histogram(finite, hi=dist.quantiles["p99"])
        )
    return ValueStats(
        n_with_value=n_val,
        share_with_value=ratio(n_val, len(it)),
        by_event={e: int(by_event[c]) for c, e in enumerate(EVENT_TYPES) if by_event[c]},
        distribution=dist,
        discrete=discrete,
        levels=levels,
        level_counts=level_counts,
        histogram=hist,
        n_negative=int(np.count_nonzero(finite < 0)),
    )


def _temporal(ds: Dataset, pairs: PairIndex, *, now: float) -> TemporalStats | None:
    it = ds.interactions
    ts = it.timestamp
    known = ~np.isnan(ts)
    n_known = int(known.sum())
    if n_known == 0:
        return None
    # Placeholder (<= 0) and future timestamps are data errors (see the quality list); keeping
    # them would stretch the time axis over decades of empty weeks.
    valid = known & (ts > 0) & (ts <= now)
    n_valid = int(valid.sum())
    first: float | None = None
    last: float | None = None
    growth: Growth | None = None
    by_hour = np.zeros(24, np.int64)
    by_weekday = np.zeros(7, np.int64)
    if n_valid:
        secs = (ts if n_valid == len(ts) else ts[valid]).astype(np.int64)
        by_hour = np.bincount((secs // 3600) % 24, minlength=24)
        # 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
        by_weekday = np.bincount((secs // 86_400 + 3) % 7, minlength=7)
        growth = _growth(ds, pairs, secs, valid, now=now)
        first = float(np.min(ts, where=valid, initial=np.inf))
        last = float(np.max(ts, where=valid, initial=-np.inf))

    created = ds.item_meta.created_at[it.item]
    both = known & ~np.isnan(created)
    age_dist = age_hist = share_before = None
    if both.any():
        age = (ts[both] - created[both]) / 86_400.0
        age_dist = distribution(age)
        age_hist = linear_histogram(age, n_bins=50, hi=age_dist.quantiles["p99"])
        share_before = ratio(int(np.count_nonzero(age < 0)), age.size)

    return TemporalStats(
        n_with_timestamp=n_known,
        share_with_timestamp=ratio(n_known, len(it)),
        first=iso(first),
        last=iso(last),
        first_epoch=first,
        last_epoch=last,
        span_days=None if first is None or last is None else (last - first) / 86_400.0,
        by_hour=tuple(int(c) for c in by_hour),
        by_weekday=tuple(int(c) for c in by_weekday),
        growth=growth,
        item_age_days=age_dist,
        item_age_histogram=age_hist,
        share_before_item_creation=share_before,
    )


def _growth(
    ds: Dataset, pairs: PairIndex, secs: np.ndarray, valid: np.ndarray, *, now: float
) -> Growth:
    """Per-period counts; `secs` are the valid timestamps (int64 epoch seconds) of `valid` rows."""
    it = ds.interactions
    lo_w = (int(secs.min()) - _FIRST_MONDAY) // _WEEK
    hi_w = (int(secs.max()) - _FIRST_MONDAY) // _WEEK
    monthly = hi_w - lo_w + 1 > _MAX_WEEKS

    def period(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.int64)
        if monthly:
            return x.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        return (x - _FIRST_MONDAY) // _WEEK

    p_lo, p_hi = (int(p) for p in period(np.array([secs.min(), secs.max()])))
    n_periods = p_hi - p_lo + 1

    def binned(x: np.ndarray) -> tuple[int, ...]:
        x = x[np.isfinite(x)] if x.dtype.kind == "f" else x
        p = period(x) - p_lo
        p = p[(p >= 0) & (p < n_periods)]
        return tuple(int(c) for c in np.bincount(p, minlength=n_periods))

    if valid.all():
        # Every timestamp is usable: the per-pair first times already hold the answer.
        first_user = pairs.first_seen_by_user()
        first_item = pairs.first_seen_by_item()
    else:
        first_user = np.full(ds.n_users, np.inf)
        np.fmin.at(first_user, it.user[valid], secs.astype(np.float64))
        first_item = np.full(ds.n_items, np.inf)
        np.fmin.at(first_item, it.item[valid], secs.astype(np.float64))
    created = ds.item_meta.created_at
    created_ok = created[(created > 0) & (created <= now)]
    if monthly:
        starts = (
            np.arange(p_lo, p_hi + 1).astype("datetime64[M]").astype("datetime64[D]").astype(str)
        )
    else:
        day0 = (_FIRST_MONDAY + np.arange(p_lo, p_hi + 1) * _WEEK).astype("datetime64[s]")
        starts = day0.astype("datetime64[D]").astype(str)
    return Growth(
        period="month" if monthly else "week",
        starts=tuple(str(s) for s in starts),
        interactions=binned(secs),
        new_users=binned(first_user),
        new_items=binned(first_item),
        items_created=binned(created_ok) if created_ok.size else None,
    )


def _lengths(col: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, col), dtype=np.int64, count=len(col))


def _metadata(ds: Dataset) -> MetadataStats:
    m = ds.item_meta
    n = ds.n_items
    title_len = _lengths(m.title)
    text_len = _lengths(m.text)
    n_tags = _lengths(m.tags)
    has = {
        "title": title_len > 0,
        "text": text_len > 0,
        "tags": n_tags > 0,
        "category": m.category != "",
        "author": m.author != "",
        "created_at": ~np.isnan(m.created_at),
    }
    any_field = np.zeros(n, dtype=bool)
    for mask in has.values():
        any_field |= mask
    has["any"] = any_field
    field_counts = {k: int(v.sum()) for k, v in has.items()}

    texts = m.text[has["text"]]
    words = np.fromiter(map(len, map(str.split, texts)), dtype=np.int64, count=len(texts))
    tag_counter: Counter[str] = Counter(chain.from_iterable(m.tags))
    # pandas hashes object arrays of str directly; np.unique would first copy them to
    # fixed-width unicode and sort.
    cat_counts = pd.Series(m.category[has["category"]], dtype=object).value_counts(sort=True)
    authors = m.author[has["author"]]
    author_idx = ds.item_author_index()

    um = ds.user_meta
    n_users = ds.n_users
    n_interests = _lengths(um.interests)
    user_fields: dict[str, float | None] = {
        "interests": ratio(int(np.count_nonzero(n_interests)), n_users),
        "created_at": ratio(int(np.count_nonzero(~np.isnan(um.created_at))), n_users),
        "private": ratio(int(np.count_nonzero(um.private)), n_users),
    }
    for name, col in um.attributes.items():
        filled = pd.Series(np.asarray(col)).replace("", np.nan).notna()
        user_fields[f"attribute:{name}"] = ratio(int(filled.sum()), n_users)

    return MetadataStats(
        n_items=n,
        item_fields={k: ratio(v, n) for k, v in field_counts.items()},
        item_field_counts=field_counts,
        title_length=distribution(title_len[has["title"]]) if field_counts["title"] else None,
        text_length=distribution(text_len[has["text"]]) if field_counts["text"] else None,
        text_words=distribution(words) if words.size else None,
        tags_per_item=distribution(n_tags[has["tags"]]) if field_counts["tags"] else None,
        n_distinct_tags=len(tag_counter),
        n_distinct_categories=len(cat_counts),
        n_distinct_authors=len(pd.unique(authors)) if authors.size else 0,
        authors_known_users=ratio(
            int(np.count_nonzero(author_idx[has["author"]] >= 0)), field_counts["author"]
        ),
        top_tags=tuple((str(k), int(c)) for k, c in tag_counter.most_common(10)),
        top_categories=tuple((str(k), int(c)) for k, c in cat_counts.head(10).items()),
        n_users=n_users,
        user_fields=user_fields,
        users_with_interests=int(np.count_nonzero(n_interests)),
        n_distinct_interests=len(set(chain.from_iterable(um.interests))),
    )
