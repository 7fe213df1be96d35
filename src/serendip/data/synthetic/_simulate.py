"""The interaction simulation: one simulated day at a time, all users at once.

Each day every active user gets a Poisson number of *exposures* (activity x the day's rate;
weekends busier; a diurnal curve), each from one source: **author** (in network: a recent post
of a followed author, fresh, good and on-topic preferred), **social** (in network: an item a
followee liked or shared on an earlier day), or **discover** (out of network: a fresh item of
a topic from the user's interest mixture, favouring quality and popularity, never what the
network already showed, so predictable from interests alone). Each exposure is a view; the
`ResponseModel` then draws click, like and, given a like, comment and share. A feedback loop
sets the daily in-network exposure share so the measured share of all rows tracks the
configured one, measured as the tests do (the author is a followee, or a followee liked or
shared the item strictly earlier -- which a discovery row can be, after a followee's like
earlier that day). Memory is bounded by the last `network_memory_days` of pushes and
exposures, not by the size of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from serendip.data.dataset import EVENT_CODES
from serendip.data.synthetic._sampling import GroupedSampler, csr_from_groups, expand_ranges
from serendip.data.synthetic._truth import _AFFINITY_FLOOR, ResponseModel
from serendip.data.synthetic._world import DAY, World

__all__ = ["DayRows", "SimulationStats", "simulate"]

_AUTHOR, _SOCIAL, _DISCOVER = 0, 1, 2
_W_FEED = 10  # candidate posts per feed draw
_W_DISCOVER = 16  # candidate items per discovery draw
_M_SOCIAL = 8  # candidate pushes per social draw
_TOP_CHECK = 4  # best candidates checked against what the user has already seen
_ROUNDS = (  # source per retry round: own source twice, the other network source, then discovery
    (_AUTHOR, _SOCIAL, _DISCOVER),
    (_AUTHOR, _SOCIAL, _DISCOVER),
    (_SOCIAL, _AUTHOR, _DISCOVER),
    (_DISCOVER, _DISCOVER, _DISCOVER),
    (_DISCOVER, _DISCOVER, _DISCOVER),
)
# Relative activity by hour of day (UTC): quiet nights, busy evenings.
# fmt: off
_DIURNAL = np.array([2.0, 1.2, 0.8, 0.6, 0.6, 0.8, 1.5, 2.5, 3.2, 3.4, 3.5, 3.7,
                     4.0, 3.8, 3.6, 3.6, 3.8, 4.2, 4.8, 5.4, 5.8, 5.6, 4.6, 3.2])
# fmt: on
_VIEW, _CLICK, _LIKE, _COMMENT, _SHARE = (
    EVENT_CODES[e] for e in ("view", "click", "like", "comment", "share")
)


@dataclass(frozen=True, slots=True)
class DayRows:
    """One day's interaction rows, sorted by (timestamp, user, event). int64 except event (int8)."""

    day: int
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray


@dataclass(slots=True)
class SimulationStats:
    """Running totals; `in_network_rows` counts rows that are in network as measured."""

    rows: int = 0
    exposures: int = 0
    planned_exposures: int = 0
    in_network_rows: int = 0
    discover_rows: int = 0
    accidental_rows: int = 0
    events: dict[str, int] = field(default_factory=dict)
    source_exposures: dict[str, int] = field(
        default_factory=lambda: {"author": 0, "social": 0, "discover": 0}
    )

    @property
    def in_network_share(self) -> float:
        return self.in_network_rows / self.rows if self.rows else 0.0


@dataclass(frozen=True, slots=True)
class _TimeIndex:
    """Items grouped (by author or topic) and sorted by creation within each group.

    keys = group << 32 | (created - base), so one searchsorted finds, per query, the last item of
    its group created at or before a given time.
    """

    ptr: np.ndarray
    items: np.ndarray
    keys: np.ndarray
    base: int

    @classmethod
    def build(cls, group: np.ndarray, n_groups: int, created: np.ndarray, base: int) -> _TimeIndex:
        ptr, order = csr_from_groups(group, n_groups, order_key=created)
        keys = (group[order].astype(np.int64) << 32) | (created[order] - base)
        return cls(ptr=ptr, items=order.astype(np.int64), keys=keys, base=base)


def _search(
    sorted_arr: np.ndarray, query: np.ndarray, side: Literal["left", "right"] = "left"
) -> np.ndarray:
    """`np.searchsorted` for many unsorted queries into a large array, sorting the queries first.

    Sorted queries walk the array in order (NumPy reuses the previous bound), which on arrays of
    millions is an order of magnitude faster than random probes.
    """
    q = np.asarray(query)
    flat = q.ravel()
    if len(flat) < 64 or len(sorted_arr) < 4096:
        return np.searchsorted(sorted_arr, q, side=side)
    order = np.argsort(flat)
    out = np.empty(len(flat), dtype=np.int64)
    out[order] = np.searchsorted(sorted_arr, flat[order], side=side)
    return out.reshape(q.shape)


class _Window:
    """(key, time) pairs added over the last days, packed into one sorted int64 array.

    A key is user * n_items + item; it takes the high bits and the time (seconds since `base`,
    in units of `resolution` seconds) the low `time_bits`, so sorting the packed values sorts by
    key, then time. All entries of one user form one contiguous range, membership of any number
    of keys is one `searchsorted`, and adding a day appends to a preallocated buffer and sorts it
    in place (two sorted runs: a linear merge). Entries older than `size` days are dropped once
    a week, so the memory spans `size` to `size + 6` days.
    """

    _COMPACT_EVERY = 7

    def __init__(self, size: int, max_key: int, base: int, span: int) -> None:
        key_bits = max(int(max_key).bit_length(), 1)
        self.time_bits = 63 - key_bits
        self.resolution = max(1, -(-span // (1 << self.time_bits)))
        self.size = size
        self.base = base
        self._buf = np.zeros(1024, dtype=np.int64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def packed(self) -> np.ndarray:
        return self._buf[: self._n]

    def pack(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        return (keys << self.time_bits) | ((times - self.base) // self.resolution)

    def keys_at(self, pos: np.ndarray) -> np.ndarray:
        return self.packed[pos] >> self.time_bits

    def times_at(self, pos: np.ndarray) -> np.ndarray:
        return (self.packed[pos] & ((1 << self.time_bits) - 1)) * self.resolution + self.base

    def add(self, day: int, keys: np.ndarray, times: np.ndarray, day_start: int) -> None:
        """Add one day's pairs (any order); `day_start` dates the weekly compaction."""
        if day % self._COMPACT_EVERY == 0 and self._n:
            cutoff = (day_start - self.size * DAY - self.base) // self.resolution
            kept = self.packed[(self.packed & ((1 << self.time_bits) - 1)) >= cutoff]
            self._n = len(kept)
            self._buf[: self._n] = kept
        m = len(keys)
        if not m:
            return
        if self._n + m > len(self._buf):
            grown = np.zeros(int((self._n + m) * 1.5), dtype=np.int64)
            grown[: self._n] = self.packed
            self._buf = grown
        self._buf[self._n : self._n + m] = np.sort(self.pack(keys, times))
        self._n += m
        self.packed.sort(kind="stable")

    def range_of(self, lo_key: np.ndarray, hi_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions [lo, hi) of entries with lo_key <= key < hi_key."""
        return _search(self.packed, lo_key << self.time_bits), _search(
            self.packed, hi_key << self.time_bits
        )

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if self._n == 0:
            return np.zeros(np.shape(keys), dtype=bool)
        pos = np.minimum(_search(self.packed, keys << self.time_bits), self._n - 1)
        return (self.packed[pos] >> self.time_bits) == keys


class _Simulator:
    def __init__(self, world: World, response: ResponseModel, rng: np.random.Generator) -> None:
        self.w = world
        self.cfg = world.config
        self.response = response
        self.rng = rng
        w = world
        n_users, n_items, k = w.n_users, w.n_items, w.n_topics
        self.k = k
        self.n_items = n_items
        self.log_q = np.log(w.item_quality)
        self.item_count = np.zeros(n_items, dtype=np.int64)
        # Sorted, since the edges are sorted by (follower, followee).
        self.edge_keys = w.follower * n_users + w.followee

        # Feed: followed authors, weighted by how much they post.
        posts = np.bincount(w.item_author, minlength=n_users)
        is_fa = w.is_author[w.followee] & (posts[w.followee] > 0)
        fa_follower = w.follower[is_fa]
        self.fa_target = w.followee[is_fa]
        fa_ptr = np.concatenate(
            [[0], np.cumsum(np.bincount(fa_follower, minlength=n_users))]
        ).astype(np.int64)
        self.feed = GroupedSampler.build(fa_ptr, posts[self.fa_target] ** 0.75)
        self.has_feed = np.diff(fa_ptr) > 0
        self.has_followees = np.diff(w.follow_ptr) > 0

        self.by_author = _TimeIndex.build(w.item_author, n_users, w.item_created, w.start)
        self.by_topic = _TimeIndex.build(w.item_topic, k, w.item_created, w.start)
        explore = self.cfg.explore_share
        self.topic_cum = np.cumsum((1.0 - explore) * w.theta + explore / k, axis=1)
        self.hour_cum = np.cumsum(_DIURNAL) / _DIURNAL.sum()
        self.horizon = int(self.cfg.feed_horizon_days * DAY)

        memory = self.cfg.network_memory_days
        max_key = n_users * n_items
        span = w.end - w.start + 2 * DAY  # follow-up events may land just after the window
        self.pushes = _Window(memory, max_key, w.start, span)
        # Exposures are remembered longer than pushes: a re-shown item must not be liked twice.
        self.seen = _Window(max(2 * memory, 28), max_key, w.start, span)
        self.stats = SimulationStats(
            events={e: 0 for e in ("view", "click", "like", "comment", "share")}
        )

    # ------------------------------------------------------------------ helpers
    def _affinity_logit(self, u: np.ndarray, items: np.ndarray) -> np.ndarray:
        aff = self.k * self.w.theta[u[:, None] if items.ndim == 2 else u, self.w.item_topic[items]]
        return self.response.affinity_effect * np.log(aff + _AFFINITY_FLOOR)

    def _recent_pick(
        self,
        index: _TimeIndex,
        group: np.ndarray,
        c_star: np.ndarray,
        t: np.ndarray,
        u: np.ndarray,
        width: int,
        feed: bool,
    ) -> np.ndarray:
        """Per query, an item of `group` created shortly before `c_star` (and before `t`); -1 if none."""
        rng = self.rng
        rel = np.clip(c_star - index.base, -1, (1 << 32) - 1)
        pos = _search(index.keys, (group << 32) + rel, side="right") - 1
        lo, hi = index.ptr[group], index.ptr[group + 1]
        pos = np.maximum(pos, lo)  # nothing before c*: the group's earliest, if it predates t
        cand = pos[:, None] - np.arange(width)[None, :]
        ok = (cand >= lo[:, None]) & (cand < hi[:, None])
        items = index.items[np.clip(cand, 0, len(index.items) - 1)]
        created = self.w.item_created[items]
        ok &= created < t[:, None]
        score = self.log_q[items] * self.response.quality_effect + rng.gumbel(size=items.shape)
        if feed:
            ok &= created >= (t - self.horizon)[:, None]
            score += self._affinity_logit(u, items)
        else:
            score += self.cfg.popularity_boost * np.log1p(self.item_count[items])
        score[~ok] = -np.inf
        return self._best_unseen(u, items, score)

    def _best_unseen(self, u: np.ndarray, items: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Per row, the best-scoring candidate the user has not been shown; -1 if none.

        Only the top few by score are checked against the exposure memory (the lookups are
        the expensive part; the rest would rarely win).
        """
        k = min(_TOP_CHECK, items.shape[1])
        if k < items.shape[1]:
            top = np.argpartition(-score, k - 1, axis=1)[:, :k]
            items = np.take_along_axis(items, top, axis=1)
            score = np.take_along_axis(score, top, axis=1)
        score = np.where(self.seen.contains(u[:, None] * self.n_items + items), -np.inf, score)
        best = np.argmax(score, axis=1)
        rows = np.arange(len(u))
        return np.where(np.isfinite(score[rows, best]), items[rows, best], -1)

    def _author_candidates(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        pos = self.feed.sample(u, self.rng)
        out = np.full(len(u), -1, dtype=np.int64)
        has = pos >= 0
        if not has.any():
            return out
        author = self.fa_target[pos[has]]
        c_star = t[has] - self.rng.exponential(
            self.cfg.feed_freshness_days * DAY, int(has.sum())
        ).astype(np.int64)
        out[has] = self._recent_pick(
            self.by_author, author, c_star, t[has], u[has], _W_FEED, feed=True
        )
        return out

    def _social_candidates(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Items pushed to the user by followees' likes/shares on earlier days: the best of a few
        random pushes, preferring recent ones, items on the user's topics and good items."""
        rng = self.rng
        out = np.full(len(u), -1, dtype=np.int64)
        pushes = self.pushes
        if len(pushes) == 0 or len(u) == 0:
            return out
        n = self.n_items
        lo, hi = pushes.range_of(u * n, (u + 1) * n)
        picks = lo[:, None] + (rng.random((len(u), _M_SOCIAL)) * (hi - lo)[:, None]).astype(
            np.int64
        )
        picks = np.minimum(picks, len(pushes) - 1)
        items = pushes.keys_at(picks) % n
        push_age = (t[:, None] - pushes.times_at(picks)) / DAY
        item_age = (t[:, None] - self.w.item_created[items]) / DAY
        score = self._affinity_logit(u, items) + self.log_q[items] * self.response.quality_effect
        score += rng.gumbel(size=items.shape) - push_age / self.cfg.social_delay_days
        score -= item_age / self.cfg.discover_freshness_days
        score[(hi <= lo)[:, None] | (item_age * DAY > self.horizon)] = -np.inf
        return self._best_unseen(u, items, score)

    def _discover_candidates(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        rng = self.rng
        r = rng.random(len(u))
        topic = np.minimum((self.topic_cum[u] < r[:, None]).sum(axis=1), self.k - 1).astype(
            np.int64
        )
        c_star = t - rng.exponential(self.cfg.discover_freshness_days * DAY, len(u)).astype(
            np.int64
        )
        return self._recent_pick(self.by_topic, topic, c_star, t, u, _W_DISCOVER, feed=False)

    def _follows(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = u * self.w.n_users + v
        pos = _search(self.edge_keys, q)
        return self.edge_keys[np.minimum(pos, len(self.edge_keys) - 1)] == q

    # ------------------------------------------------------------------ one day
    def _plan(self, day_start: int, rows_target: float) -> tuple[np.ndarray, np.ndarray]:
        """Exposures of the day: users (by activity) and view times."""
        w, rng = self.w, self.rng
        day_end = day_start + DAY
        alive = np.clip((day_end - w.user_created) / DAY, 0.0, 1.0)
        weight = w.activity * alive
        st = self.stats
        rpe = st.rows / st.exposures if st.exposures else 1.45
        kept = st.exposures / st.planned_exposures if st.planned_exposures else 0.97
        expected = rows_target / rpe / max(kept, 0.5)
        lam = weight * (expected / max(weight.sum(), 1e-12))
        counts = rng.poisson(lam)
        u = np.repeat(np.arange(w.n_users, dtype=np.int64), counts)
        hour = np.minimum(np.searchsorted(self.hour_cum, rng.random(len(u)), side="right"), 23)
        t = day_start + hour * 3600 + rng.integers(0, 3600, len(u))
        created = w.user_created[u]
        late = t <= created
        t[late] = (
            created[late]
            + 1
            + (rng.random(int(late.sum())) * (day_end - created[late] - 1)).astype(np.int64)
        )
        return u, t

    def _assign(self, u: np.ndarray, rows_target: float) -> np.ndarray:
        """Source per exposure; the in-network share follows the feedback loop."""
        rng, st, cfg = self.rng, self.stats, self.cfg
        s = cfg.in_network_share
        acc = st.accidental_rows / st.discover_rows if st.discover_rows > 1000 else 0.02
        acc = min(acc, 0.9)
        need = s * (st.rows + rows_target) - st.in_network_rows - acc * rows_target
        x = float(np.clip(need / (rows_target * (1.0 - acc)), 0.0, 1.0)) if rows_target > 0 else s
        eligible = self.has_followees[u]
        share_eligible = eligible.mean() if len(u) else 1.0
        p_net = min(1.0, x / max(share_eligible, 1e-9))
        net = eligible & (rng.random(len(u)) < p_net)
        author = net & self.has_feed[u] & (rng.random(len(u)) < cfg.network_author_share)
        source = np.full(len(u), _DISCOVER, dtype=np.int8)
        source[net] = _SOCIAL
        source[author] = _AUTHOR
        return source

    def _resolve(
        self, u: np.ndarray, t: np.ndarray, source: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items for the exposures, retrying and falling back; (item or -1, final source)."""
        n_items = self.n_items
        item = np.full(len(u), -1, dtype=np.int64)
        final = source.copy()
        accepted = np.zeros(0, dtype=np.int64)
        pending = np.arange(len(u))
        for plan in _ROUNDS:
            if len(pending) == 0:
                break
            src = np.asarray(plan, dtype=np.int8)[source[pending]]
            src[(src == _AUTHOR) & ~self.has_feed[u[pending]]] = _SOCIAL
            src[(src == _SOCIAL) & ~self.has_followees[u[pending]]] = _DISCOVER
            cand = np.full(len(pending), -1, dtype=np.int64)
            for s, fn in (
                (_AUTHOR, self._author_candidates),
                (_SOCIAL, self._social_candidates),
                (_DISCOVER, self._discover_candidates),
            ):
                sel = np.flatnonzero(src == s)
                if len(sel):
                    cand[sel] = fn(u[pending[sel]], t[pending[sel]])
            uu, tt = u[pending], t[pending]
            ok = cand >= 0
            ci = np.maximum(cand, 0)
            ok &= (self.w.item_created[ci] < tt) & (self.w.item_author[ci] != uu)
            disc = ok & (src == _DISCOVER)
            if disc.any():
                d = np.flatnonzero(disc)
                ok[d] &= ~self._follows(uu[d], self.w.item_author[ci[d]])
                ok[d] &= ~self.pushes.contains(uu[d] * n_items + ci[d])
            key = uu * n_items + ci
            okp = np.flatnonzero(ok)
            if len(okp):
                ok[okp] &= ~self.seen.contains(key[okp])
                if len(accepted):
                    pos = _search(accepted, key[okp])
                    ok[okp] &= accepted[np.minimum(pos, len(accepted) - 1)] != key[okp]
                okp = np.flatnonzero(ok)
                _, first = np.unique(key[okp], return_index=True)
                unique = np.zeros(len(ok), dtype=bool)
                unique[okp[first]] = True
                ok &= unique
            done = pending[ok]
            item[done] = cand[ok]
            final[done] = src[ok]
            accepted = np.sort(np.concatenate([accepted, key[ok]]))
            pending = pending[~ok]
        return item, final

    def day(self, d: int, rows_target: float) -> DayRows:
        w, rng, st = self.w, self.rng, self.stats
        day_start = w.start + d * DAY
        u, t = self._plan(day_start, rows_target)
        source = self._assign(u, rows_target)
        item, source = self._resolve(u, t, source)
        st.planned_exposures += len(u)
        keep = item >= 0
        u, t, item, source = u[keep], t[keep], item[keep], source[keep]
        n = len(u)
        st.exposures += n
        for name, s in (("author", _AUTHOR), ("social", _SOCIAL), ("discover", _DISCOVER)):
            st.source_exposures[name] += int((source == s).sum())

        # The funnel.
        aff = self.k * w.theta[u, w.item_topic[item]]
        p = self.response.probabilities(aff, w.item_quality[item])
        click = rng.random(n) < p["click"]
        like = rng.random(n) < p["like"]
        comment = like & (rng.random(n) < p["comment"])
        share = like & (rng.random(n) < p["share"])
        parts = [(np.ones(n, dtype=bool), _VIEW, 0, 1)]
        parts += [
            (click, _CLICK, 1, 30),
            (like, _LIKE, 5, 180),
            (comment, _COMMENT, 30, 900),
            (share, _SHARE, 10, 600),
        ]
        ru, ri, rt, re, rsrc = [], [], [], [], []
        for mask, code, lo, hi in parts:
            idx = np.flatnonzero(mask)
            ru.append(u[idx])
            ri.append(item[idx])
            rt.append(t[idx] + (rng.integers(lo, hi, len(idx)) if hi > 1 else 0))
            re.append(np.full(len(idx), code, dtype=np.int8))
            rsrc.append(source[idx])
        ru_a, ri_a, rt_a, re_a, rs_a = (np.concatenate(x) for x in (ru, ri, rt, re, rsrc))
        order = np.lexsort((re_a, ru_a, rt_a))
        ru_a, ri_a, rt_a, re_a, rs_a = (
            ru_a[order],
            ri_a[order],
            rt_a[order],
            re_a[order],
            rs_a[order],
        )

        # Likes and shares reach the followers of whoever made them.
        engaged = (re_a == _LIKE) | (re_a == _SHARE)
        push_keys, push_times = self._push(ru_a[engaged], ri_a[engaged], rt_a[engaged])
        disc = rs_a == _DISCOVER
        accidental = np.zeros(len(ru_a), dtype=bool)
        if len(push_keys) and disc.any():
            dk = ru_a[disc] * self.n_items + ri_a[disc]
            pos = np.minimum(_search(push_keys, dk), len(push_keys) - 1)
            accidental[disc] = (push_keys[pos] == dk) & (push_times[pos] < rt_a[disc])
        self.pushes.add(d, push_keys, push_times, day_start)
        self.seen.add(d, u * self.n_items + item, t, day_start)
        self.item_count += np.bincount(item, minlength=self.n_items)

        st.rows += len(ru_a)
        st.discover_rows += int(disc.sum())
        st.accidental_rows += int(accidental.sum())
        st.in_network_rows += int((~disc).sum() + accidental.sum())
        for name, code in (
            ("view", _VIEW),
            ("click", _CLICK),
            ("like", _LIKE),
            ("comment", _COMMENT),
            ("share", _SHARE),
        ):
            st.events[name] += int((re_a == code).sum())

        return DayRows(d, ru_a, ri_a, rt_a, re_a)

    def _push(
        self, v: np.ndarray, item: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(follower * n_items + item, time) of every like/share pushed to followers, sorted by
        key then time (so the first match of a key is its earliest push). Expects the likes and
        shares in time order."""
        w = self.w
        if len(v) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        pos, owner = expand_ranges(w.fans_ptr[v], w.fans_ptr[v + 1])
        keys = w.fans[pos] * self.n_items + item[owner]
        times = t[owner]
        order = np.argsort(keys, kind="stable")  # stable: equal keys stay in time order
        return keys[order], times[order]


def simulate(
    world: World,
    response: ResponseModel,
    rng: np.random.Generator,
    on_day: Callable[[int, int], None] | None = None,
) -> tuple[Iterator[DayRows], SimulationStats]:
    """(iterator of each day's rows, stats filled in as the iterator runs).

    `on_day(done, total)` is called after every simulated day.
    """
    sim = _Simulator(world, response, rng)
    cfg = world.config
    first = cfg.warmup_days
    days = list(range(first, cfg.days))
    weekday0 = (int(world.start // DAY) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    season = np.array([cfg.weekend_boost if (weekday0 + d) % 7 >= 5 else 1.0 for d in days])

    def run() -> Iterator[DayRows]:
        for j, d in enumerate(days):
            remaining = max(cfg.n_interactions - sim.stats.rows, 0)
            target = remaining * season[j] / season[j:].sum()
            yield sim.day(d, target)
            if on_day is not None:
                on_day(j + 1, len(days))

    return run(), sim.stats
