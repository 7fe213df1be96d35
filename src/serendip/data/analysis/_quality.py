"""Data-quality checks: each finds one kind of problem, counts it and shows one example."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serendip.data.analysis._model import QualityIssue
from serendip.data.analysis._pairs import PairIndex
from serendip.data.analysis._stats import iso
from serendip.data.dataset import EVENT_CODES, EVENT_TYPES, Dataset

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

#: A user is an activity outlier (a likely bot or crawler) above max(BOT_MEDIAN_FACTOR x the
#: median activity, the 99.9th percentile).
BOT_MEDIAN_FACTOR = 50.0


def quality_issues(
    ds: Dataset,
    pairs: PairIndex,
    user_counts: np.ndarray,
    item_counts: np.ndarray,
    *,
    now: float,
    extra: Sequence[QualityIssue] = (),
) -> tuple[QualityIssue, ...]:
    """Every problem found plus `extra`, errors first, then by count (largest first)."""
    issues: list[QualityIssue] = list(extra)
    issues += _interaction_issues(ds, pairs, now=now)
    issues += _metadata_issues(ds, user_counts, item_counts)
    issues += _activity_outliers(ds, user_counts)
    if ds.has_social:
        issues += _social_issues(ds)
    return tuple(sorted(issues, key=lambda q: (_SEVERITY_ORDER[q.severity], -q.count, q.problem)))


def _row_example(ds: Dataset, row: int, extra: str = "") -> str:
    it = ds.interactions
    ts = iso(float(it.timestamp[row]))
    parts = [
        f"user '{ds.users.id(int(it.user[row]))}'",
        f"item '{ds.items.id(int(it.item[row]))}'",
        EVENT_TYPES[int(it.event[row])],
    ]
    if ts is not None:
        parts.append(f"at {ts}")
    elif not np.isnan(it.timestamp[row]):
        parts.append(f"at t={it.timestamp[row]:.0f}")
    return ", ".join(parts) + (f" {extra}" if extra else "")


def _interaction_issues(ds: Dataset, pairs: PairIndex, *, now: float) -> list[QualityIssue]:
    it = ds.interactions
    out: list[QualityIssue] = []
    n = len(it)
    if n == 0:
        return [QualityIssue("error", "the dataset has no interactions", 0)]

    repeated = pairs.sizes > 1
    n_repeated = int(repeated.sum())
    if n_repeated:
        n_dup, dup_row = _exact_duplicates(ds, pairs, repeated)
        if n_dup:
            out.append(
                QualityIssue(
                    "warning",
                    "duplicate interactions (same user, item, event and timestamp)",
                    n_dup,
                    _row_example(ds, dup_row),
                )
            )
        first = int(np.flatnonzero(repeated)[0])
        out.append(
            QualityIssue(
                "info",
                "repeated (user, item) pairs: several interactions on one pair",
                n_repeated,
                f"user '{ds.users.id(int(pairs.users[first]))}', item "
                f"'{ds.items.id(int(pairs.items[first]))}': {int(pairs.sizes[first])} interactions",
            )
        )

    ts = it.timestamp
    known = ~np.isnan(ts)
    n_known = int(known.sum())
    if 0 < n_known < n:
        out.append(
            QualityIssue(
                "warning",
                "interactions without a timestamp (others have one)",
                n - n_known,
                _row_example(ds, int(np.argmin(known))),
            )
        )
    if n_known:
        nonpos = known & (ts <= 0)
        if nonpos.any():
            out.append(
                QualityIssue(
                    "error",
                    "timestamps at or before 0 (1970-01-01, a placeholder for unknown)",
                    int(nonpos.sum()),
                    _row_example(ds, int(np.argmax(nonpos))),
                )
            )
        future = known & (ts > now)
        if future.any():
            out.append(
                QualityIssue(
                    "error",
                    f"timestamps in the future (after {iso(now)})",
                    int(future.sum()),
                    _row_example(ds, int(np.argmax(future))),
                )
            )
        # Placeholder and future timestamps are reported above; the checks below use the rest.
        valid = known & (ts > 0) & (ts <= now)
        created = ds.item_meta.created_at[it.item]
        early = valid & (ts < created)  # NaN created_at compares False
        if early.any():
            row = int(np.argmax(early))
            out.append(
                QualityIssue(
                    "warning",
                    "interactions before the item was created",
                    int(early.sum()),
                    _row_example(ds, row, f"(item created {iso(float(created[row]))})"),
                )
            )
        user_created = ds.user_meta.created_at
        if not np.isnan(user_created).all():
            if int(valid.sum()) == n_known:
                first_seen = pairs.first_seen_by_user()
            else:
                first_seen = np.full(ds.n_users, np.nan)
                np.fmin.at(first_seen, it.user[valid], ts[valid])
            early_u = first_seen < user_created
            if early_u.any():
                u = int(np.argmax(early_u))
                out.append(
                    QualityIssue(
                        "warning",
                        "users whose first interaction precedes their account creation",
                        int(early_u.sum()),
                        f"user '{ds.users.id(u)}' first active {iso(float(first_seen[u]))}, "
                        f"created {iso(float(user_created[u]))}",
                    )
                )

    val = it.value
    inf = np.isinf(val)
    if inf.any():
        out.append(
            QualityIssue(
                "error",
                "infinite interaction values",
                int(inf.sum()),
                _row_example(ds, int(np.argmax(inf))),
            )
        )
    neg = val < 0
    if neg.any():
        row = int(np.argmax(neg))
        out.append(
            QualityIssue(
                "warning",
                "negative interaction values",
                int(neg.sum()),
                _row_example(ds, row, f"value {val[row]:g}"),
            )
        )
    rating_no_value = (it.event == EVENT_CODES["rating"]) & np.isnan(val)
    if rating_no_value.any():
        out.append(
            QualityIssue(
                "warning",
                "rating events without a value",
                int(rating_no_value.sum()),
                _row_example(ds, int(np.argmax(rating_no_value))),
            )
        )
    return out


def _exact_duplicates(ds: Dataset, pairs: PairIndex, repeated: np.ndarray) -> tuple[int, int]:
    """(number of rows repeating an earlier row's user, item, event and timestamp, one such row).

    Duplicates can only hide inside repeated pairs, whose rows `pairs.order` already groups.
    When timestamps are whole seconds, (group, time, event) packs into one int64 and a single
    sort finds equal neighbours; otherwise a 3-key lexsort (slower: one sort pass per key).
    """
    it = ds.interactions
    rows = pairs.order[np.repeat(repeated, pairs.sizes)]
    group = np.repeat(np.arange(int(repeated.sum()), dtype=np.int64), pairs.sizes[repeated])
    ts = it.timestamp[rows]
    ev = it.event[rows].astype(np.int64)
    known = ~np.isnan(ts)
    lo = float(ts[known].min()) if known.any() else 0.0
    # Time offset + 1, with 0 for an unknown time (two unknown times are equal here).
    rel = np.where(known, ts - lo + 1.0, 0.0)
    span = float(rel.max()) if len(rel) else 0.0
    bits_group = max(int(group[-1]).bit_length(), 1) if len(group) else 1
    bits_time = max(int(span).bit_length(), 1)
    if bits_group + bits_time + 3 <= 62 and np.array_equal(rel, np.floor(rel)):
        packed = (group << (bits_time + 3)) | (rel.astype(np.int64) << 3) | ev
        order = np.argsort(packed)
        packed = packed[order]
        same = packed[1:] == packed[:-1]
    else:
        order = np.lexsort((ev, rel, group))
        g, t, e = group[order], rel[order], ev[order]
        same = (g[1:] == g[:-1]) & (t[1:] == t[:-1]) & (e[1:] == e[:-1])
    n_dup = int(same.sum())
    return n_dup, int(rows[order[1:][same][0]]) if n_dup else -1


def _has_text(col: np.ndarray) -> np.ndarray:
    return col != ""


def _metadata_issues(
    ds: Dataset, user_counts: np.ndarray, item_counts: np.ndarray
) -> list[QualityIssue]:
    out: list[QualityIssue] = []
    m = ds.item_meta
    if ds.n_items:
        any_meta = (
            _has_text(m.title)
            | _has_text(m.text)
            | _has_text(m.category)
            | _has_text(m.author)
            | ~np.isnan(m.created_at)
            | (np.fromiter(map(len, m.tags), dtype=np.int64, count=len(m.tags)) > 0)
        )
        n_without = int((~any_meta).sum())
        if n_without == ds.n_items:
            out.append(
                QualityIssue(
                    "info",
                    "no item has metadata (title, text, tags, category, author, created_at): "
                    "content-based models and cold-start items cannot be served",
                    n_without,
                )
            )
        elif n_without:
            out.append(
                QualityIssue(
                    "warning",
                    "items without any metadata (e.g. interacted items missing from the items table)",
                    n_without,
                    f"item '{ds.items.id(int(np.argmin(any_meta)))}'",
                )
            )
        has_author = _has_text(m.author)
        unknown_author = has_author & (ds.item_author_index() < 0)
        if unknown_author.any():
            i = int(np.argmax(unknown_author))
            out.append(
                QualityIssue(
                    "info",
                    "item authors that are not known users",
                    int(unknown_author.sum()),
                    f"item '{ds.items.id(i)}' by '{m.author[i]}'",
                )
            )
        never = item_counts == 0
        if never.any():
            out.append(
                QualityIssue(
                    "info",
                    "catalog items never interacted with",
                    int(never.sum()),
                    f"item '{ds.items.id(int(np.argmax(never)))}'",
                )
            )
    idle = user_counts == 0
    if idle.any():
        out.append(
            QualityIssue(
                "info",
                "users without interactions",
                int(idle.sum()),
                f"user '{ds.users.id(int(np.argmax(idle)))}'",
            )
        )
    return out


def _activity_outliers(ds: Dataset, user_counts: np.ndarray) -> list[QualityIssue]:
    active = user_counts[user_counts > 0]
    if active.size < 10:
        return []
    threshold = max(BOT_MEDIAN_FACTOR * float(np.median(active)), float(np.quantile(active, 0.999)))
    bots = user_counts > threshold
    if not bots.any():
        return []
    u = int(np.argmax(user_counts))
    return [
        QualityIssue(
            "warning",
            f"extreme activity outliers, likely bots (more than {threshold:.0f} interactions: "
            f"{BOT_MEDIAN_FACTOR:.0f}x the median and above the 99.9th percentile)",
            int(bots.sum()),
            f"user '{ds.users.id(u)}' with {int(user_counts[u])} interactions "
            f"(median {float(np.median(active)):g})",
        )
    ]


def _social_issues(ds: Dataset) -> list[QualityIssue]:
    out: list[QualityIssue] = []
    f, g = ds.social.follower, ds.social.followee
    self_follow = f == g
    if self_follow.any():
        u = int(f[np.argmax(self_follow)])
        out.append(
            QualityIssue(
                "warning",
                "self-follows (a user following themself)",
                int(self_follow.sum()),
                f"user '{ds.users.id(u)}'",
            )
        )
    key = np.sort(f.astype(np.int64) * max(ds.n_users, 1) + g)
    n_dup = int(np.count_nonzero(key[1:] == key[:-1]))
    if n_dup:
        out.append(QualityIssue("warning", "duplicate follow edges", n_dup))
    touched = np.zeros(ds.n_users, dtype=bool)
    touched[f] = True
    touched[g] = True
    if not touched.all():
        out.append(
            QualityIssue(
                "info",
                "isolated users: no follower and no followee",
                int((~touched).sum()),
                f"user '{ds.users.id(int(np.argmin(touched)))}'",
            )
        )
    return out
