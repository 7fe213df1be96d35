"""Build `UserContext`s from a `Dataset` (offline evaluation, training the ranker), optionally
with live events on top (what serving knows beyond the training window)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from serendip.data.dataset import EVENT_CODES, Dataset
from serendip.errors import DataError
from serendip.pipeline.candidates import UserContext

__all__ = ["contexts_from_dataset", "dedupe_history"]


def dedupe_history(
    items: np.ndarray, times: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One entry per item, most recent first: its latest time (NaN = unknown, sorted last) and
    its strongest event (highest code in `EVENT_TYPES`' funnel order)."""
    items = np.asarray(items, np.int64)
    if len(items) == 0:
        return items, np.zeros(0), np.zeros(0, np.int8)
    times = np.asarray(times, np.float64)
    events = np.asarray(events, np.int8)
    uniq, inv = np.unique(items, return_inverse=True)
    t = np.full(len(uniq), -np.inf)
    np.maximum.at(t, inv, np.where(np.isnan(times), -np.inf, times))
    ev = np.zeros(len(uniq), np.int8)
    np.maximum.at(ev, inv, events)
    order = np.lexsort((uniq, -t))
    t = np.where(np.isneginf(t), np.nan, t)
    return uniq[order], t[order], ev[order]


def contexts_from_dataset(
    ds: Dataset,
    users: Sequence[str],
    *,
    now: float | None = None,
    extra_history: Mapping[str, Sequence[tuple[str, float, str]]] | None = None,
) -> list[UserContext]:
    """One context per user ID, in order.

    history: the user's interactions in `ds` plus `extra_history[user]` (live events as
    (item ID, epoch seconds, event name); items `ds` does not know are skipped), one entry per
    item, most recent first (see `dedupe_history`). followees: from `ds.social`; interests from
    `ds.user_meta`. now: defaults to the newest timestamp of `ds` (NaN without timestamps).
    A user `ds` does not know gets user_idx -1 and only their extra history.

    >>> ctx = contexts_from_dataset(ds, ["u1"])[0]  # doctest: +SKIP
    >>> ds.items.lookup(ctx.history[:3])  # doctest: +SKIP
    """
    it = ds.interactions
    if now is None:
        now = float(np.nanmax(it.timestamp)) if it.has_timestamps else float("nan")
    ids = np.asarray([str(u) for u in users], dtype=object)
    uidx = ds.users.indices(ids) if len(ids) else np.zeros(0, np.int64)
    # interactions grouped by user (only the users asked for)
    wanted = np.zeros(ds.n_users, bool)
    wanted[uidx[uidx >= 0]] = True
    rows = np.flatnonzero(wanted[it.user])
    order = rows[np.argsort(it.user[rows], kind="stable")]
    by_user = it.user[order]
    starts = np.searchsorted(by_user, np.arange(ds.n_users + 1))
    # followees grouped by follower
    g = ds.social
    f_order = np.argsort(g.follower, kind="stable")
    f_sorted = g.follower[f_order]
    f_starts = np.searchsorted(f_sorted, np.arange(ds.n_users + 1))
    out: list[UserContext] = []
    for user, u in zip(ids, uidx, strict=True):
        if u >= 0:
            sel = order[starts[u] : starts[u + 1]]
            items, times, events = it.item[sel], it.timestamp[sel], it.event[sel]
            followees = np.unique(g.followee[f_order[f_starts[u] : f_starts[u + 1]]]).astype(
                np.int64
            )
            interests = tuple(str(x) for x in ds.user_meta.interests[u])
        else:
            items, times, events = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8)
            followees, interests = np.zeros(0, np.int64), ()
        live = (extra_history or {}).get(str(user))
        if live:
            li, lt, le = _live_events(ds, str(user), live)
            items = np.concatenate([items.astype(np.int64), li])
            times = np.concatenate([times, lt])
            events = np.concatenate([events, le])
        h, ht, he = dedupe_history(items, times, events)
        out.append(
            UserContext(
                user=str(user),
                user_idx=int(u),
                history=h,
                history_time=ht,
                history_event=he,
                followees=followees,
                interests=interests,
                now=float(now),
            )
        )
    return out


def _live_events(
    ds: Dataset, user: str, events: Sequence[tuple[str, float, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = ds.items.indices(np.asarray([str(e[0]) for e in events], dtype=object))
    times = np.asarray([float(e[1]) for e in events], dtype=np.float64)
    codes = []
    for e in events:
        code = EVENT_CODES.get(str(e[2]).lower())
        if code is None:
            raise DataError(
                f"live event of user '{user}' has unknown event type '{e[2]}'; "
                f"valid: {', '.join(EVENT_CODES)}",
                field="event",
            )
        codes.append(code)
    ev = np.asarray(codes, dtype=np.int8)
    ok = items >= 0
    return items[ok], times[ok], ev[ok]
