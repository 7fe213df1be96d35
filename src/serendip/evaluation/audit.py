"""Bias and discovery audit of recommendation lists: `audit_recommendations`.

What a platform must watch besides accuracy, measured on the same top-K lists (a study cell's,
or a day of served lists for the monitors):

- **Popularity bias**: the mean popularity percentile of the recommended items against that of
  the users' own histories, and the popularity lift of Abdollahpouri et al., "The Unfairness of
  Popularity Bias in Recommendation" (RMSE workshop, RecSys 2019): (GAP_recs - GAP_history) /
  GAP_history with GAP the mean over users of the average training popularity of their items.
  A lift above 0 means the lists are more mainstream than the users are.
- **Long tail**: the share of recommendation slots taken by long-tail items, where the head
  ("short head") is the most popular items that together hold `head_mass` (default 80%) of the
  training interactions and the tail is every other catalog item (Abdollahpouri, Burke and
  Mobasher, "Controlling Popularity Bias in Learning-to-Rank Recommendation", RecSys 2017),
  against the tail's share of the catalog and of the users' histories.
- **New authors**: the share of slots given to items of authors whose first catalog item was
  created within `new_author_days` of the newest training interaction (needs item creation
  times and authors; else skipped with a note).
- **Parity across user activity groups**: users split into `n_groups` groups of (about) equal
  size by training history length (quartiles by default, lightest first); per group NDCG@K
  (with a test set), tail share and popularity percentile; the gap is max - min over groups
  and the ratio min / max (1 = parity).
- **Out-of-network discovery** (the filter-bubble measure, with a social graph): the share of
  recommended items outside the user's network (no followee interacted with or authored it)
  and the share of hits (engagement with the test set) that are out of network.

Popularity = distinct training users per item; the percentile of an item is the share of
catalog items strictly less popular, plus half the ties (mid-rank), in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.data.vocabulary import Vocabulary
from serendip.errors import ConfigError
from serendip.evaluation import metrics as m
from serendip.evaluation.evaluate import recs_from_frame

__all__ = [
    "AUDIT_DESCRIPTIONS",
    "AuditResult",
    "GroupAudit",
    "RankedLists",
    "audit_recommendations",
    "long_tail_items",
    "new_author_items",
    "popularity_percentiles",
]

_DAY = 86_400.0

#: What each headline number of an audit means (the leaderboard's column titles).
AUDIT_DESCRIPTIONS: dict[str, str] = {
    "rec_popularity_pct": "mean popularity percentile of recommended items",
    "history_popularity_pct": "mean popularity percentile of the users' own history items",
    "popularity_lift": "(avg popularity of recs - of history) / of history (Abdollahpouri 2019)",
    "tail_share": "share of recommended slots holding long-tail items",
    "tail_catalog_share": "share of the catalog that is long tail",
    "tail_history_share": "share of the users' history items that are long tail",
    "new_author_share": "share of recommended slots holding items of new authors",
    "new_author_catalog_share": "share of the catalog by new authors",
    "ndcg_gap": "NDCG@K of the best minus the worst activity group",
    "ndcg_ratio": "NDCG@K of the worst over the best activity group (1 = parity)",
    "tail_share_gap": "long-tail share of the most minus the least served activity group",
    "oon_share": "share of recommended items outside the user's network",
    "oon_hit_share": "share of hits (test engagement) outside the user's network",
}


class RankedLists(Protocol):
    """What the audit reads from a model's output (`RecLists`, `TopKLists`): users (external IDs
    or indices) and items ((n, K) item indices, -1 padded)."""

    @property
    def users(self) -> np.ndarray: ...

    @property
    def items(self) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class GroupAudit:
    """One activity group: its users' history lengths (min, max), size and measures."""

    name: str
    n_users: int
    min_history: int
    max_history: int
    ndcg: float | None
    tail_share: float
    rec_popularity_pct: float
    oon_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_users": self.n_users,
            "min_history": self.min_history,
            "max_history": self.max_history,
            "ndcg": self.ndcg,
            "tail_share": self.tail_share,
            "rec_popularity_pct": self.rec_popularity_pct,
            "oon_share": self.oon_share,
        }


@dataclass(frozen=True, slots=True)
class AuditResult:
    """The audit of one set of lists: headline numbers (keys of `AUDIT_DESCRIPTIONS`; None
    where they cannot be measured), the activity groups, settings and notes."""

    k: int
    n_users: int
    measures: dict[str, float | None]
    groups: tuple[GroupAudit, ...]
    settings: dict[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> float | None:
        return self.measures[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the measures at the top level, groups by name, settings, notes."""
        return {
            "k": self.k,
            "n_users": self.n_users,
            **self.measures,
            "groups": {g.name: g.to_dict() for g in self.groups},
            "settings": dict(self.settings),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- item classes
def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """float64 (n_items,): mid-rank percentile of each item's popularity among all items
    (share strictly below plus half the ties), in [0, 1]; all-equal popularity gives 0.5."""
    pop = np.asarray(popularity, dtype=np.float64)
    n = len(pop)
    if n == 0:
        return np.zeros(0)
    srt = np.sort(pop)
    below = np.searchsorted(srt, pop, side="left")
    upto = np.searchsorted(srt, pop, side="right")
    return (below + 0.5 * (upto - below)) / n


def long_tail_items(popularity: np.ndarray, head_mass: float = 0.8) -> np.ndarray:
    """bool (n_items,): True for long-tail items. The head is the fewest most-popular items
    whose popularity sums to at least `head_mass` of the total (ties: lower index first);
    items nobody interacted with are always tail."""
    if not 0.0 < head_mass <= 1.0:
        raise ConfigError(f"head_mass must be in (0, 1], got {head_mass}")
    pop = np.asarray(popularity, dtype=np.float64)
    tail = np.ones(len(pop), dtype=bool)
    total = pop.sum()
    if total <= 0:
        return tail
    order = np.lexsort((np.arange(len(pop)), -pop))
    cum = np.cumsum(pop[order])
    n_head = int(np.searchsorted(cum, head_mass * total - 1e-9 * total, side="left")) + 1
    tail[order[: min(n_head, len(pop))]] = False
    tail[pop <= 0] = True
    return tail


def new_author_items(train: Dataset, days: float) -> np.ndarray | None:
    """bool (n_items,): items whose author published their first catalog item within `days`
    of the newest training interaction; None when items have no authors or creation times."""
    meta = train.item_meta
    authors = np.asarray(meta.author, dtype=object)
    created = np.asarray(meta.created_at, dtype=np.float64)
    known = (authors != "") & np.isfinite(created)
    if not known.any() or not train.interactions.has_timestamps:
        return None
    now = float(np.nanmax(train.interactions.timestamp))
    first = pd.Series(created[known]).groupby(authors[known]).min()
    new_authors = set(first.index[first.to_numpy() >= now - days * _DAY])
    return np.fromiter((a in new_authors for a in authors), dtype=bool, count=len(authors))


# --------------------------------------------------------------------------- the audit
def audit_recommendations(
    recs: RankedLists | pd.DataFrame,
    train: Dataset,
    test: Dataset | None = None,
    *,
    k: int = 10,
    fold_in: Dataset | None = None,
    head_mass: float = 0.8,
    new_author_days: float = 30.0,
    n_groups: int = 4,
) -> AuditResult:
    """Audit the top-`k` lists `recs` of the users they name (see the module docstring).

    recs: a `RecLists` / `TopKLists` (users as external IDs or indices of `train`, items as
    indices of `train`'s items or of their own `item_vocab`), or a DataFrame user,item,rank.
    train: what popularity, histories, the network and activity come from; test: the held-out
    interactions (same vocabularies) for NDCG and hit shares, None for lists without a truth
    (served lists); fold_in: cold users' histories, counted as history.

    >>> audit = audit_recommendations(model.recommend(users, 10), split.train, split.test)  # doctest: +SKIP
    >>> audit["popularity_lift"], audit["oon_share"]  # doctest: +SKIP
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if n_groups < 1:
        raise ConfigError(f"n_groups must be at least 1, got {n_groups}")
    users, lists = _lists(recs, train, k)
    notes: list[str] = []
    history = train.seen()
    if fold_in is not None:
        history = (history + fold_in.seen()).tocsr()
        history.data[:] = 1.0
    popularity = np.bincount(train.seen().indices, minlength=train.n_items).astype(np.float64)
    pct = popularity_percentiles(popularity)
    tail = long_tail_items(popularity, head_mass)
    valid = lists >= 0
    n_listed = valid.sum(axis=1)
    safe = np.where(valid, lists, 0)

    def per_user_mean(per_item: np.ndarray) -> np.ndarray:
        """Mean of `per_item` over each user's listed items (NaN for an empty list)."""
        total = np.where(valid, per_item[safe], 0.0).sum(axis=1)
        return np.divide(total, n_listed, out=np.full(len(users), np.nan), where=n_listed > 0)

    hist_rows = history[users]
    hist_len = np.diff(hist_rows.indptr)
    rec_pct_u = per_user_mean(pct)
    hist_pct_u = _row_means(hist_rows, pct)
    rec_pop_u = per_user_mean(popularity)
    hist_pop_u = _row_means(hist_rows, popularity)
    tail_u = per_user_mean(tail.astype(np.float64))
    both = ~np.isnan(rec_pct_u) & ~np.isnan(hist_pct_u)
    gap_recs = _nanmean(rec_pop_u[both])
    gap_hist = _nanmean(hist_pop_u[both])
    measures: dict[str, float | None] = {
        "rec_popularity_pct": _nanmean(rec_pct_u),
        "history_popularity_pct": _nanmean(hist_pct_u),
        "popularity_lift": (gap_recs - gap_hist) / gap_hist
        if gap_recs is not None and gap_hist
        else None,
        "tail_share": _share(tail, lists),
        "tail_catalog_share": float(tail.mean()) if len(tail) else None,
        "tail_history_share": float(tail[hist_rows.indices].mean()) if hist_rows.nnz else None,
    }
    new = new_author_items(train, new_author_days)
    if new is None:
        notes.append("new-author share skipped: items have no authors or creation times")
        measures["new_author_share"] = measures["new_author_catalog_share"] = None
    else:
        measures["new_author_share"] = _share(new, lists)
        measures["new_author_catalog_share"] = float(new.mean()) if len(new) else None

    ndcg_u, hits = _accuracy(lists, users, test, history, notes)
    oon = None
    if train.has_social:
        follows = train.social.adjacency(train.n_users)
        oon = m.out_of_network(lists, users, train.seen(), follows, train.item_author_index())
        measures["oon_share"] = float(oon.sum() / valid.sum()) if valid.any() else None
        if hits is not None:
            n_hits = int(hits.sum())
            measures["oon_hit_share"] = float((oon & hits).sum() / n_hits) if n_hits else None
        else:
            measures["oon_hit_share"] = None
    else:
        notes.append("out-of-network shares skipped: no social graph")
        measures["oon_share"] = measures["oon_hit_share"] = None
    oon_u = None
    if oon is not None:
        oon_u = np.divide(
            oon.sum(axis=1), n_listed, out=np.full(len(users), np.nan), where=n_listed > 0
        )

    groups = _groups(hist_len, n_groups, ndcg_u, tail_u, rec_pct_u, oon_u)
    ndcgs = [g.ndcg for g in groups if g.ndcg is not None]
    tails = [g.tail_share for g in groups if g.n_users]
    measures["ndcg_gap"] = max(ndcgs) - min(ndcgs) if len(ndcgs) > 1 else None
    measures["ndcg_ratio"] = min(ndcgs) / max(ndcgs) if len(ndcgs) > 1 and max(ndcgs) > 0 else None
    measures["tail_share_gap"] = max(tails) - min(tails) if len(tails) > 1 else None
    return AuditResult(
        k=k,
        n_users=len(users),
        measures={name: measures.get(name) for name in AUDIT_DESCRIPTIONS},
        groups=groups,
        settings={
            "head_mass": head_mass,
            "new_author_days": new_author_days,
            "n_groups": float(n_groups),
        },
        notes=tuple(notes),
    )


def _lists(
    recs: RankedLists | pd.DataFrame, train: Dataset, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user indices (n,), item indices (n, k) of `train`, -1 padded) of the lists."""
    if isinstance(recs, pd.DataFrame):
        recs = recs_from_frame(recs, train.users, train.items, k=k)
    if not (hasattr(recs, "users") and hasattr(recs, "items")):
        raise ConfigError(
            "recommendations must be a DataFrame (user,item,rank) or an object with .users "
            f"and .items, got {type(recs).__name__}"
        )
    users = np.asarray(recs.users).ravel()
    if users.dtype.kind in "OUS":
        ids = users
        users = train.users.indices(ids)
        if (users < 0).any():
            raise ConfigError(
                f"recommendations name user '{ids[np.argmax(users < 0)]}', unknown to train"
            )
    users = users.astype(np.int64)
    items = np.asarray(recs.items, dtype=np.int64)
    if items.ndim != 2 or items.shape[0] != len(users):
        raise ConfigError(f"expected one list per user ({len(users)} x K), got {items.shape}")
    vocab = getattr(recs, "item_vocab", None)
    if isinstance(vocab, Vocabulary) and vocab is not train.items and vocab != train.items:
        mapped = np.full(items.shape, -1, dtype=np.int64)
        listed = items >= 0
        mapped[listed] = train.items.indices(vocab.lookup(items[listed]))
        items = mapped
    items = m.check_recs(items[:, :k], train.n_items)
    if items.shape[1] < k:
        items = np.hstack([items, np.full((len(users), k - items.shape[1]), -1, np.int64)])
    return users, items


def _row_means(rows: sp.csr_matrix, per_item: np.ndarray) -> np.ndarray:
    """Mean of `per_item` over each row's stored columns (NaN for an empty row)."""
    n = np.diff(rows.indptr)
    pattern = sp.csr_matrix((np.ones(rows.nnz), rows.indices, rows.indptr), shape=rows.shape)
    sums = pattern @ np.asarray(per_item, dtype=np.float64)
    return np.divide(sums, n, out=np.full(rows.shape[0], np.nan), where=n > 0)


def _nanmean(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else None


def _share(flag: np.ndarray, lists: np.ndarray) -> float | None:
    """Share of the listed slots whose item has `flag`."""
    valid = lists >= 0
    if not valid.any():
        return None
    return float(flag[lists[valid]].mean())


def _accuracy(
    lists: np.ndarray,
    users: np.ndarray,
    test: Dataset | None,
    history: sp.csr_matrix,
    notes: list[str],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-user NDCG@K (NaN where the user has no truth) and the hit matrix, or (None, None)
    without a test set. Truth: test items not already in the user's history."""
    if test is None:
        notes.append("NDCG and hit shares skipped: no test set")
        return None, None
    truth = test.seen().tocsr()
    seen = truth.multiply(history).tocsr()
    truth = (truth - seen).tocsr()
    truth.eliminate_zeros()
    truth.sort_indices()
    rows = truth[users]
    n_truth = np.diff(rows.indptr)
    hits = m.hit_matrix(lists, rows)
    ndcg = m.ndcg(hits, n_truth).astype(np.float64)
    ndcg[n_truth == 0] = np.nan
    return ndcg, hits


def _groups(
    hist_len: np.ndarray,
    n_groups: int,
    ndcg: np.ndarray | None,
    tail: np.ndarray,
    pct: np.ndarray,
    oon: np.ndarray | None,
) -> tuple[GroupAudit, ...]:
    """Users split by history length into `n_groups` of (about) equal size, lightest first
    (ties broken by position, so groups stay equal); named q1..qN."""
    n = len(hist_len)
    if n == 0:
        return ()
    order = np.argsort(hist_len, kind="stable")
    code = np.empty(n, dtype=np.int64)
    code[order] = np.arange(n) * min(n_groups, n) // n
    out = []
    for g in range(min(n_groups, n)):
        sel = code == g
        out.append(
            GroupAudit(
                name=f"q{g + 1}",
                n_users=int(sel.sum()),
                min_history=int(hist_len[sel].min()),
                max_history=int(hist_len[sel].max()),
                ndcg=_nanmean(ndcg[sel]) if ndcg is not None else None,
                tail_share=_nanmean(tail[sel]) or 0.0,
                rec_popularity_pct=_nanmean(pct[sel]) or 0.0,
                oon_share=_nanmean(oon[sel]) if oon is not None else None,
            )
        )
    return tuple(out)
