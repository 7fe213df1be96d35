"""Simulated users with known preferences, to prove the experiment statistics.

The synthetic platform's generator writes the ground truth it drew interactions from (topic
mixtures, item quality, the response model: `serendip.data.synthetic`). `SimulatedPlatform`
lets those users answer served lists: an item at 0-based position r is examined with
probability 1 / log2(r + 2) (position bias), and an examined item is clicked, liked and (after
a like) shared with the truth's probabilities. A user visits on a day with probability
1 - exp(-visit_rate * activity) (the truth's activity level) and sees one list of `k` items per
visit: page d of the ranker's list on day d (items served before are not served again).

On top of that: `simulate_ab` (a whole A/B or A/A test: users entering on their first visit,
their arm, the day of their first primary outcome, a pre-period covariate for CUPED),
`simulate_interleaving` (team-draft interleaved lists, credit per user),
`expected_conversion` and `calibrate_multiplier` (the true conversion of a variant, and the
multiplier on response probabilities that gives a chosen true lift), and `engagement`
(point 7 of issue 18: total engagement and its out-of-network share, from true preferences).
Everything is vectorised over users with NumPy; randomness comes from the `rng` passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import brentq

from serendip.data.dataset import Dataset
from serendip.data.loaders.platform import load_platform
from serendip.data.synthetic import (
    PlatformConfig,
    PlatformTruth,
    generate_platform,
    load_truth,
    resolve_config,
)
from serendip.errors import DataError
from serendip.experiments.interleaving import team_draft_batch
from serendip.models.base import Recommender

__all__ = [
    "ABRun",
    "Engagement",
    "InterleavingRun",
    "Outcome",
    "SimulatedPlatform",
    "calibrate_multiplier",
    "engagement",
    "examination",
    "expected_conversion",
    "hit_probabilities",
    "simulate_ab",
    "simulate_interleaving",
]

SimEvent = Literal["click", "like", "share"]
SIM_EVENTS: tuple[SimEvent, ...] = ("click", "like", "share")


def examination(k: int) -> np.ndarray:
    """Probability that a user looks at positions 0..k-1 (float64 (k,)): 1 / log2(r + 2), the
    discount of DCG, so the top item is always seen and the tenth a bit less than a third of
    the time."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A simulated response to a served list: `event` on `item` shown at 0-based `position`."""

    item: str
    position: int
    event: str


class SimulatedPlatform:
    """The users of a generated platform, answering lists from their true preferences.

    Indices are the truth's (`truth.users`, `truth.items`); the dataset is what models are
    fitted on (same external IDs). `visit_prob[u]` is user u's chance of visiting on a day.
    """

    def __init__(
        self,
        dataset: Dataset,
        truth: PlatformTruth,
        activity: np.ndarray,
        *,
        visit_rate: float = 0.3,
    ) -> None:
        if visit_rate <= 0 or not math.isfinite(visit_rate):
            raise DataError(f"visit_rate must be > 0, got {visit_rate}", field="visit_rate")
        activity = np.asarray(activity, dtype=np.float64)
        if activity.shape != (len(truth.users),):
            raise DataError(f"activity must have one value per user, got {activity.shape}")
        self.dataset = dataset
        self.truth = truth
        self.user_ids: np.ndarray = truth.users.lookup(np.arange(len(truth.users)))
        # plain dicts: one list at a time (`respond`) is too small for a vectorised lookup
        self._user_index = {str(u): i for i, u in enumerate(self.user_ids)}
        self._item_index = {
            str(x): i for i, x in enumerate(truth.items.lookup(np.arange(len(truth.items))))
        }
        self.visit_prob: np.ndarray = 1.0 - np.exp(-visit_rate * activity)
        # dataset index -> truth index, for items a model returns
        self._item_to_truth = truth.items.indices(dataset.items.lookup(np.arange(dataset.n_items)))
        # the author of each truth item, as a truth user index (-1 unknown)
        ds_author = dataset.item_author_index()
        author_ids = np.where(
            ds_author >= 0, dataset.users.lookup(np.maximum(ds_author, 0)), ""
        ).astype(object)
        author_truth = truth.users.indices(author_ids)
        author_truth[ds_author < 0] = -1
        self.item_author = np.full(len(truth.items), -1, dtype=np.int64)
        ok = self._item_to_truth >= 0
        self.item_author[self._item_to_truth[ok]] = author_truth[ok]
        # who follows whom, in truth user indices
        n = len(truth.users)
        social = dataset.social
        follower = truth.users.indices(dataset.users.lookup(social.follower))
        followee = truth.users.indices(dataset.users.lookup(social.followee))
        keep = (follower >= 0) & (followee >= 0)
        self.follows = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=bool), (follower[keep], followee[keep])), shape=(n, n)
        )
        # per-user probability tables of served pages, reused across simulated tests; each
        # entry keeps its pages array alive, so an id is never reused while cached
        self._tables: dict[tuple[int, str, float, bool], tuple[np.ndarray, np.ndarray]] = {}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_directory(cls, path: str | Path, *, visit_rate: float = 0.3) -> SimulatedPlatform:
        """A generated platform directory (with its `truth/`)."""
        root = Path(path)
        truth = load_truth(root)
        users = pd.read_parquet(root / "truth" / "users.parquet", columns=["user", "activity"])
        activity = (
            users.set_index("user")["activity"]
            .reindex(truth.users.lookup(np.arange(len(truth.users))))
            .fillna(1.0)
            .to_numpy(dtype=np.float64)
        )
        return cls(load_platform(root), truth, activity, visit_rate=visit_rate)

    @classmethod
    def generate(
        cls,
        preset: str | PlatformConfig,
        *,
        seed: int,
        out: str | Path,
        visit_rate: float = 0.3,
        **overrides: object,
    ) -> SimulatedPlatform:
        """Generate a platform into `out` (`serendip.data.synthetic.generate_platform`; reused
        when `out` already holds one of the same preset and seed) and load it.

        >>> platform = SimulatedPlatform.generate("tiny", seed=0, out="data/tiny")  # doctest: +SKIP
        """
        root = Path(out)
        manifest = root / "manifest.json"
        reuse = False
        if manifest.is_file() and not overrides and isinstance(preset, str):
            meta = json.loads(manifest.read_text())
            reuse = meta.get("preset") == preset and meta.get("seed") == seed
        if not reuse:
            generate_platform(resolve_config(preset, overrides), seed=seed, out=root)
        return cls.from_directory(root, visit_rate=visit_rate)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    # ----------------------------------------------------------------- responses
    def probabilities(
        self, users: np.ndarray, items: np.ndarray, *, multiplier: float = 1.0
    ) -> dict[SimEvent, np.ndarray]:
        """P(event at this position of the list), position bias included, per (user, slot).

        users: int (n,) truth user indices; items: int (n, k) truth item indices, -1 = empty
        slot (probability 0). `multiplier` scales every response probability (capped at 1):
        the simulator's way of giving a variant a true lift. Returns float64 (n, k) arrays for
        "click", "like" and "share" (share = like and then share).
        """
        items = np.asarray(items, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64)
        if items.ndim != 2 or users.shape != (items.shape[0],):
            raise DataError(
                f"users (n,) and items (n, k) expected, got {users.shape}, {items.shape}"
            )
        valid = items >= 0
        safe = np.where(valid, items, 0)
        affinity = self.truth.affinity(users[:, None], safe)
        p = self.truth.response.probabilities(affinity, self.truth.item_quality[safe])
        exam = examination(items.shape[1])[None, :] * valid
        like = np.minimum(p["like"] * multiplier, 1.0)
        return {
            "click": exam * np.minimum(p["click"] * multiplier, 1.0),
            "like": exam * like,
            "share": exam * like * np.minimum(p["share"] * multiplier, 1.0),
        }

    def respond(
        self,
        user: str,
        items: Sequence[str],
        rng: np.random.Generator,
        *,
        multiplier: float = 1.0,
    ) -> list[Outcome]:
        """How `user` answers the list `items` (best first): clicks, likes and shares, by
        position. Unknown items are ignored (never engaged with); DataError for an unknown user.
        """
        u = self._user_index.get(user, -1)
        if u < 0:
            raise DataError(f"unknown user '{user}' (not in the platform's truth)")
        idx = np.fromiter((self._item_index.get(x, -1) for x in items), np.int64, len(items))
        p = self.probabilities(np.array([u]), idx[None, :], multiplier=multiplier)
        examined_click = rng.random(len(idx)) < p["click"][0]
        liked = rng.random(len(idx)) < p["like"][0]
        # share | like
        with np.errstate(divide="ignore", invalid="ignore"):
            share_given_like = np.where(p["like"][0] > 0, p["share"][0] / p["like"][0], 0.0)
        shared = liked & (rng.random(len(idx)) < share_given_like)
        out = []
        for r, item in enumerate(items):
            for event, hit in (("click", examined_click), ("like", liked), ("share", shared)):
                if hit[r]:
                    out.append(Outcome(str(item), r, event))
        return out

    def table(
        self, pages: np.ndarray, event: SimEvent, multiplier: float = 1.0, *, per_slot: bool = False
    ) -> np.ndarray:
        """Probabilities of `event` for every user's served `pages` (n_users, days, k): per
        slot (same shape) with `per_slot`, else per day (n_users, days), P(at least one).
        Cached per pages array (treat served pages as immutable)."""
        key = (id(pages), event, float(multiplier), per_slot)
        hit = self._tables.get(key)
        if hit is not None and hit[0] is pages:
            return hit[1]
        n, days, k = pages.shape
        p = self.probabilities(
            np.repeat(np.arange(n), days), pages.reshape(n * days, k), multiplier=multiplier
        )[event]
        out = p.reshape(n, days, k) if per_slot else _day_hit_prob(p).reshape(n, days)
        if len(self._tables) >= 32:
            self._tables.pop(next(iter(self._tables)))
        self._tables[key] = (pages, out)
        return out

    def in_network(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """bool (n, k): the item's author is followed by the user (False for empty slots and
        unknown authors)."""
        items = np.asarray(items, dtype=np.int64)
        authors = np.where(items >= 0, self.item_author[np.maximum(items, 0)], -1)
        rows = np.broadcast_to(np.asarray(users, dtype=np.int64)[:, None], items.shape)
        ok = authors >= 0
        out = np.zeros(items.shape, dtype=bool)
        out[ok] = np.asarray(self.follows[rows[ok], authors[ok]]).ravel()
        return out

    # ----------------------------------------------------------------- serving
    def pages(self, model: Recommender, days: int, k: int = 10) -> np.ndarray:
        """What `model` serves every user over `days` visits: int64 (n_users, days, k) truth
        item indices (-1 empty), page d = positions d*k .. d*k+k-1 of its top-(days*k) list
        (seen items excluded, as served)."""
        recs = model.recommend(self.user_ids, days * k, exclude_seen=True)
        own = recs.item_vocab.indices(self.dataset.items.lookup(np.arange(self.dataset.n_items)))
        # model item index -> truth item index
        to_truth = np.full(len(recs.item_vocab), -1, dtype=np.int64)
        ok = own >= 0
        to_truth[own[ok]] = self._item_to_truth[ok]
        items = np.where(recs.items >= 0, to_truth[np.maximum(recs.items, 0)], -1)
        if items.shape[1] < days * k:
            pad = np.full((len(items), days * k - items.shape[1]), -1, dtype=np.int64)
            items = np.hstack([items, pad])
        return items.reshape(len(items), days, k)


# --------------------------------------------------------------------- experiments
@dataclass(frozen=True, slots=True, eq=False)
class ABRun:
    """One simulated A/B test. Per user: `arm` (index into the variants), `persona` (truth user
    index), `entered` (0-based day of the first visit, when the user joins the experiment),
    `converted` (day of the first primary outcome, inf if none) and `covariate` (primary
    outcomes in the pre-period, for CUPED)."""

    arm: np.ndarray
    persona: np.ndarray
    entered: np.ndarray
    converted: np.ndarray
    covariate: np.ndarray
    days: int

    def conversion(self, day: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(0/1 per user, mask of users in the experiment) at the end of `day` (0-based; None:
        the last day)."""
        d = self.days - 1 if day is None else day
        present = self.entered <= d
        return (self.converted <= d).astype(np.float64), present


@dataclass(frozen=True, slots=True, eq=False)
class InterleavingRun:
    """One simulated interleaving test: per user, primary outcomes credited to ranker a and b
    over the whole test."""

    credit_a: np.ndarray
    credit_b: np.ndarray

    def wins(self) -> tuple[int, int]:
        """Users preferring a, users preferring b (more credited outcomes); ties left out."""
        return int((self.credit_a > self.credit_b).sum()), int(
            (self.credit_b > self.credit_a).sum()
        )


def _day_hit_prob(p: np.ndarray) -> np.ndarray:
    """P(at least one outcome in a day's list): 1 - prod(1 - p) over the last axis."""
    return -np.expm1(np.log1p(-np.minimum(p, 1.0 - 1e-12)).sum(axis=-1))


def hit_probabilities(
    platform: SimulatedPlatform,
    pages: np.ndarray,
    *,
    event: SimEvent = "like",
    multiplier: float = 1.0,
) -> np.ndarray:
    """float64 (n_users, days): P(at least one `event` outcome) for every user on the day they
    are served each page, position bias included."""
    return platform.table(pages, event, multiplier)


def _personas(
    platform: SimulatedPlatform, n: int, days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n users who visit at least once in `days`: persona drawn in proportion to that chance,
    and their visits (bool (n, days)), conditioned on at least one, exactly."""
    v = platform.visit_prob
    enter = 1.0 - (1.0 - v) ** days
    persona = rng.choice(platform.n_users, size=n, p=enter / enter.sum())
    pv = v[persona]
    # the first visit from its truncated geometric law; later days independently
    u = rng.random(n)
    first = np.floor(np.log1p(-u * enter[persona]) / np.log1p(-np.minimum(pv, 1 - 1e-12)))
    first = np.clip(first, 0, days - 1).astype(np.int64)
    visits = rng.random((n, days)) < pv[:, None]
    day = np.arange(days)[None, :]
    visits &= day > first[:, None]
    visits[np.arange(n), first] = True
    return persona, visits


def simulate_ab(
    platform: SimulatedPlatform,
    pages: Sequence[np.ndarray],
    *,
    n_users: int,
    rng: np.random.Generator,
    shares: Sequence[float] | None = None,
    event: SimEvent = "like",
    multipliers: Sequence[float] | None = None,
    pre_pages: np.ndarray | None = None,
    pre_days: int = 14,
) -> ABRun:
    """Simulate one A/B test of `n_users` users (those who visit at least once).

    `pages[i]` is what variant i serves (`SimulatedPlatform.pages`, all with the same days);
    users are split by `shares` (default equal) independently at random, which is what the
    salted-hash assignment does to users. `multipliers[i]` scales variant i's response
    probabilities (1: none). The pre-period covariate counts `event` outcomes over `pre_days`
    days of `pre_pages` (default: variant 0's pages) before the test.
    """
    n_var = len(pages)
    days = pages[0].shape[1]
    if any(p.shape != pages[0].shape for p in pages):
        raise DataError("every variant's pages must have the same shape")
    shares = [1.0 / n_var] * n_var if shares is None else list(shares)
    multipliers = [1.0] * n_var if multipliers is None else list(multipliers)
    persona, visits = _personas(platform, n_users, days, rng)
    arm = rng.choice(n_var, size=n_users, p=np.asarray(shares) / sum(shares))
    hit_prob = np.zeros((n_users, days))
    for i in range(n_var):
        rows = arm == i
        table = hit_probabilities(platform, pages[i], event=event, multiplier=multipliers[i])
        hit_prob[rows] = table[persona[rows]]
    hits = visits & (rng.random((n_users, days)) < hit_prob)
    converted = np.where(hits.any(axis=1), hits.argmax(axis=1), np.inf).astype(np.float64)
    entered = visits.argmax(axis=1)

    pre = pages[0] if pre_pages is None else pre_pages
    covariate = np.zeros(n_users)
    if pre_days > 0:
        # outcomes per visit: the sum of the page's Bernoulli outcomes, drawn per slot
        pre_len = pre.shape[1]
        slot_p = platform.table(pre, event, per_slot=True)
        pre_day = rng.integers(0, pre_len, size=(n_users, pre_days))
        p = slot_p[persona[:, None], pre_day]  # (n_users, pre_days, k)
        pre_visit = rng.random((n_users, pre_days)) < platform.visit_prob[persona][:, None]
        counts = (rng.random(p.shape) < p).sum(axis=2)
        covariate = (counts * pre_visit).sum(axis=1).astype(np.float64)
    return ABRun(arm, persona, entered, converted, covariate, days)


def simulate_interleaving(
    platform: SimulatedPlatform,
    pages_a: np.ndarray,
    pages_b: np.ndarray,
    *,
    n_users: int,
    rng: np.random.Generator,
    event: SimEvent = "like",
) -> InterleavingRun:
    """Simulate one team-draft interleaving test of `n_users` users (who visit at least once):
    on each visit the user sees page d of ranker a team-drafted with page d of ranker b
    (`team_draft_batch`) and answers it; outcomes are credited to the team of their item."""
    if pages_a.shape != pages_b.shape:
        raise DataError("pages_a and pages_b must have the same shape")
    days, k = pages_a.shape[1], pages_a.shape[2]
    persona, visits = _personas(platform, n_users, days, rng)
    user, day = np.nonzero(visits)
    items, from_b = team_draft_batch(
        pages_a[persona[user], day], pages_b[persona[user], day], k, rng
    )
    p = platform.probabilities(persona[user], items)[event]
    hit = rng.random(p.shape) < p
    credit_a = np.bincount(user, weights=(hit & ~from_b).sum(axis=1), minlength=n_users)
    credit_b = np.bincount(user, weights=(hit & from_b).sum(axis=1), minlength=n_users)
    return InterleavingRun(credit_a, credit_b)


def expected_conversion(
    platform: SimulatedPlatform,
    pages: np.ndarray,
    *,
    event: SimEvent = "like",
    multiplier: float = 1.0,
) -> float:
    """The true conversion rate of a variant serving `pages`: the expected share of users in
    the test (those who visit at least once) with at least one `event` outcome, exactly, from
    the truth (no sampling): sum_u P(u converts) / sum_u P(u visits)."""
    days = pages.shape[1]
    v = platform.visit_prob
    q = hit_probabilities(platform, pages, event=event, multiplier=multiplier)
    convert = 1.0 - np.prod(1.0 - v[:, None] * q, axis=1)
    enter = 1.0 - (1.0 - v) ** days
    return float(convert.sum() / enter.sum())


def calibrate_multiplier(
    platform: SimulatedPlatform,
    pages: np.ndarray,
    relative_lift: float,
    *,
    event: SimEvent = "like",
) -> float:
    """The multiplier on response probabilities that raises the true conversion rate of
    `pages` by exactly `relative_lift` (brentq on `expected_conversion`)."""
    base = expected_conversion(platform, pages, event=event)
    target = base * (1.0 + relative_lift)
    if not 0 < target < 1:
        raise DataError(f"a lift of {relative_lift} takes the rate {base:.3f} outside (0, 1)")

    def gap(c: float) -> float:
        return expected_conversion(platform, pages, event=event, multiplier=c) - target

    hi = 1.0 + relative_lift
    while gap(hi) < 0:
        hi *= 2
        if hi > 1e3:
            raise DataError(f"no multiplier reaches a lift of {relative_lift}")
    return float(brentq(gap, 1.0 if relative_lift > 0 else 0.0, hi if relative_lift > 0 else 1.0))


@dataclass(frozen=True, slots=True)
class Engagement:
    """Expected engagement with one model's lists, from true preferences: per served list of
    k items, expected clicks, likes, shares and all three together (`engagement`), and the
    share of that engagement on items whose author the user does not follow
    (`out_of_network_share`), and the share of served items out of network."""

    model: str
    lists: int
    clicks: float
    likes: float
    shares: float
    engagement: float
    out_of_network_share: float
    served_out_of_network: float


def engagement(platform: SimulatedPlatform, name: str, pages: np.ndarray) -> Engagement:
    """Expected engagement of every user with every page of `pages` (no sampling)."""
    n, days, k = pages.shape
    users = np.repeat(np.arange(n), days)
    items = pages.reshape(n * days, k)
    p = platform.probabilities(users, items)
    total = p["click"] + p["like"] + p["share"]
    outside = ~platform.in_network(users, items) & (items >= 0)
    lists = n * days
    eng = float(total.sum())
    return Engagement(
        model=name,
        lists=lists,
        clicks=float(p["click"].sum() / lists),
        likes=float(p["like"].sum() / lists),
        shares=float(p["share"].sum() / lists),
        engagement=eng / lists,
        out_of_network_share=float(total[outside].sum() / eng) if eng > 0 else math.nan,
        served_out_of_network=float(outside.sum() / max(1, int((items >= 0).sum()))),
    )
