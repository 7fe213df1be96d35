"""Stage three: rules and re-ranking of one user's ranked candidates.

`allowed_candidates` applies the filters no ranking may break (seen, blocked, removed, not yet
published, the user's own items); `rerank` then builds the final list greedily by maximal
marginal relevance (Carbonell & Goldstein, 1998) over content similarity, under a per-author cap
and an in-network / out-of-network mix target, on a relevance that calibrated terms may shift
(an out-of-network boost, popularity and exposure penalties). Everything is per user over at
most `pool` candidates (dense m x m similarity, m ~ 100), so one user costs well under a
millisecond. The one state across users is the `ExposureCounter`: how often each item was
already shown in a batch (or by a serving process), so that later lists spread over the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from serendip.data.dataset import ItemTable
from serendip.pipeline.candidates import UserContext
from serendip.pipeline.config import RerankParams

__all__ = [
    "CatalogRules",
    "ExposureCounter",
    "allowed_candidates",
    "diversity_vectors",
    "rerank",
]


def diversity_vectors(items: ItemTable, mode: str) -> sp.csr_matrix:
    """L2-normalised sparse content vectors (n_items, d) whose dot product is the similarity MMR
    penalises: one-hot category ("category"), binary tags ("tags"), or both with equal weight
    ("category+tags"). An item without category or tags has a zero row (similar to nothing)."""
    n = len(items)
    blocks: list[sp.csr_matrix] = []
    if mode in ("category", "category+tags"):
        cats = np.asarray(items.category, dtype=object).astype(str)
        codes, inverse = np.unique(cats, return_inverse=True)
        has = cats != ""
        m = sp.csr_matrix(
            (np.ones(int(has.sum()), np.float32), (np.flatnonzero(has), inverse[has])),
            shape=(n, len(codes)),
        )
        blocks.append(normalize(m))
    if mode in ("tags", "category+tags"):
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for i, tags in enumerate(items.tags):
            for t in set(tags or ()):
                rows.append(i)
                cols.append(vocab.setdefault(str(t), len(vocab)))
        m = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n, max(len(vocab), 1))
        )
        blocks.append(normalize(m))
    out = sp.hstack(blocks).tocsr() if len(blocks) > 1 else blocks[0]
    return normalize(out).astype(np.float32).tocsr()


@dataclass(frozen=True, slots=True, eq=False)
class CatalogRules:
    """What the filters need about every item, aligned with the item vocabulary.

    author: int64 author code (index into `author_ids`, -1 unknown); author_ids: object array of
    the authors' external user IDs; created_at: float64 epoch seconds (NaN unknown);
    blocked: bool, never shown to anyone (blocked or removed items, blocked authors).
    """

    author: np.ndarray
    author_ids: np.ndarray
    created_at: np.ndarray
    blocked: np.ndarray

    @classmethod
    def build(
        cls,
        authors: np.ndarray,
        created_at: np.ndarray,
        *,
        item_ids: np.ndarray,
        blocked_items: Sequence[str] = (),
        blocked_authors: Sequence[str] = (),
        removed: np.ndarray | None = None,
    ) -> CatalogRules:
        authors = np.asarray(authors, dtype=object).astype(str)
        names, code = np.unique(authors, return_inverse=True)
        code = code.astype(np.int64)
        code[authors == ""] = -1
        blocked = np.zeros(len(authors), dtype=bool)
        if blocked_items:
            blocked |= np.isin(np.asarray(item_ids).astype(str), list(blocked_items))
        if blocked_authors:
            blocked |= np.isin(authors, list(blocked_authors))
        if removed is not None:
            blocked |= np.asarray(removed, dtype=bool)
        return cls(code, names.astype(object), np.asarray(created_at, np.float64), blocked)

    def author_code(self, user_id: str) -> int:
        """Code of the author with this external ID, -1 when they authored nothing."""
        pos = int(np.searchsorted(self.author_ids, user_id))
        if pos < len(self.author_ids) and self.author_ids[pos] == user_id:
            return pos
        return -1


def allowed_candidates(
    items: np.ndarray,
    ctx: UserContext,
    rules: CatalogRules,
    *,
    exclude_seen: bool = True,
    exclude_unpublished: bool = True,
    exclude_own: bool = True,
    extra_allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Bool mask over `items` (item indices of one user's candidates): what may be shown.

    Drops globally blocked items, the context's `exclude`, the user's history (exclude_seen),
    items created after `ctx.now` (exclude_unpublished; unknown creation time passes), the
    user's own items (exclude_own) and items outside `extra_allowed` (a bool mask over the
    whole catalog: the request's candidate set and item filters), when given.
    """
    items = np.asarray(items, dtype=np.int64)
    ok = ~rules.blocked[items]
    if extra_allowed is not None:
        ok &= extra_allowed[items]
    if len(ctx.exclude):
        ok &= ~np.isin(items, ctx.exclude)
    if exclude_seen and len(ctx.history):
        ok &= ~np.isin(items, ctx.history)
    if exclude_unpublished and np.isfinite(ctx.now):
        ok &= ~(rules.created_at[items] > ctx.now)
    if exclude_own:
        code = rules.author_code(ctx.user)
        if code >= 0:
            ok &= rules.author[items] != code
    return ok


class ExposureCounter:
    """How often each catalog item has been shown in final lists, for the exposure penalty.

    half_life: None counts every list alike (one batch); a number of lists makes old exposure
    fade (a serving counter: a list served `half_life` lists ago counts half). Decay is lazy --
    one scale factor, renormalised now and then -- so recording a list costs O(k), not
    O(n_items). Not thread-safe; one counter per serving process.
    """

    def __init__(self, n_items: int, half_life: float | None = None) -> None:
        if half_life is not None and half_life <= 0:
            raise ValueError(f"half_life must be positive, got {half_life}")
        self.n_items = int(n_items)
        self.half_life = half_life
        self._counts = np.zeros(self.n_items, np.float64)  # in units of 1 / self._scale
        self._scale = 1.0
        self._decay = 1.0 if half_life is None else 0.5 ** (1.0 / half_life)
        self.n_lists = 0

    def shown(self, items: np.ndarray) -> np.ndarray:
        """The (decayed) number of times each of these catalog items was shown."""
        return self._counts[np.asarray(items, np.int64)] * self._scale

    def record(self, items: np.ndarray) -> None:
        """One list was shown: its items count once each (earlier lists decay one step)."""
        self._scale *= self._decay
        if self._scale < 1e-150:  # fold the scale into the counts before it underflows
            self._counts *= self._scale
            self._scale = 1.0
        self._counts[np.asarray(items, np.int64)] += 1.0 / self._scale
        self.n_lists += 1


def rerank(
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    params: RerankParams,
    *,
    content: sp.csr_matrix | None = None,
    author: np.ndarray | None = None,
    in_network: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    long_tail: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The final list of at most k items (indices from `items`) and its displayed scores.

    items, scores: one user's allowed candidates and their ranker scores. The `params.pool` best
    by score enter; the list is then built greedily: each step takes the eligible candidate with
    the highest  lambda * relevance - (1 - lambda) * max similarity to the items already chosen
    (relevance = score min-max scaled to [0, 1] over the pool; similarity = dot product of the
    `content` rows, which are L2-normalised). Eligible: not chosen, its author (`author` code per
    item of the catalog, -1 unknown and never capped) below `author_cap` items, and its side of
    the side of the network mix the target asks for: after p items, floor(oon_target * p + 0.5)
    of them are out of network (`in_network`: bool per candidate), so every prefix -- any k --
    meets the target. When the side asked for has no eligible candidate left the other side
    fills the slot, so a short pool never shortens the list.

    Popularity penalty (`params.popularity_penalty` > 0 and `popularity` given: a float per
    catalog item in [0, 1], e.g. log popularity over its maximum): relevance becomes the
    min-max scaled score minus penalty x popularity, a calibrated push toward the long tail --
    a learned ranker leans on popularity, which keeps catalog coverage below that of the
    single models; the penalty trades a little relevance for exposure (tuned on validation).

    Long-tail quota (`params.tail_target` and `long_tail`: bool per catalog item, True outside
    the popular head): after p items, at least floor(tail_target * p + 0.5) of them come from
    the long tail (checked after the network mix: a slot the network target asks for is
    filled from its side first). Tail items differ from user to user, so the quota
    guarantees exposure to the catalog's long tail -- the lever on catalog coverage.

    Out-of-network boost (`params.oon_boost` > 0 and `in_network` given): relevance plus the
    boost for out-of-network candidates -- a soft, calibrated preference for discovery beyond
    the network: an out-of-network item overtakes in-network ones only when it is within the
    boost of them, where a hard share (`oon_target`) takes the best out-of-network items
    however weak.

    Exposure penalty (`params.exposure_penalty` > 0 and `exposure`: per candidate, how often
    the item was already shown -- to the users served before in the same batch, or a decayed
    serving counter, see `ExposureCounter`): relevance minus penalty x log(1 + shown), from
    position `params.exposure_free_top` on (the first positions stay the most relevant: they
    carry most of the list's value). The first list of a batch is the ranker's; later lists
    move past items the batch has already seen many times toward nearly as relevant ones it has
    not, which spreads exposure over the catalog (catalog coverage; creators get reach). The
    result depends on the order in which users are served (deterministic for a given order).

    Displayed scores are the ranker scores made non-increasing along the list (a running
    minimum), so the list reads as sorted while MMR may reorder it. Ties keep the higher-scored
    (then lower-indexed) candidate; deterministic.
    """
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(items) == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    order = np.lexsort((items, -scores))[: params.pool]
    items, scores = items[order], scores[order]
    m = len(items)
    net = np.zeros(m, bool) if in_network is None else np.asarray(in_network, dtype=bool)[order]
    lo, hi = scores.min(), scores.max()
    rel = (scores - lo) / (hi - lo) if hi > lo else np.ones(m)
    penalised = False
    if params.oon_boost > 0 and in_network is not None:
        rel = rel + params.oon_boost * ~net
        penalised = True
    if params.popularity_penalty > 0 and popularity is not None:
        rel = rel - params.popularity_penalty * np.asarray(popularity, np.float64)[items]
        penalised = True
    # the exposure cost applies from position `exposure_free_top` on: kept apart from `rel`
    cost = None
    if params.exposure_penalty > 0 and exposure is not None:
        shown_before = np.maximum(np.asarray(exposure, np.float64)[order], 0.0)
        cost = params.exposure_penalty * np.log1p(shown_before)
    if penalised:
        again = np.lexsort((items, -rel))  # the candidates in penalised-relevance order
        items, scores, rel, net = items[again], scores[again], rel[again], net[again]
        cost = None if cost is None else cost[again]
    tail_target = None if long_tail is None else params.tail_target
    tail = np.zeros(m, bool) if long_tail is None else np.asarray(long_tail, dtype=bool)[items]
    n_tail = 0
    lam = params.mmr_lambda
    use_mmr = lam < 1.0 and content is not None
    if use_mmr:
        assert content is not None
        sub = content[items]
        sim = np.asarray((sub @ sub.T).todense(), dtype=np.float64)
        max_sim = np.zeros(m)
    cap = params.author_cap
    codes = None if author is None or cap is None else np.asarray(author, np.int64)[items]
    author_count: dict[int, int] = {}
    target = None if in_network is None else params.oon_target
    kk = min(k, m)
    n_oon = 0
    eligible = np.ones(m, dtype=bool)
    chosen: list[int] = []
    while len(chosen) < kk and eligible.any():
        mask = eligible
        if target is not None:
            # after this pick, floor(target * p + 0.5) of the first p items should be
            # out of network: every prefix of the list meets the target, not only the whole
            want_oon = math.floor(target * (len(chosen) + 1) + 0.5) > n_oon
            side = eligible & (~net if want_oon else net)
            if side.any():
                mask = side
        # at least floor(tail_target * p + 0.5) long-tail items among the first p: a floor,
        # not a mix -- the ranker may still choose more of them
        if tail_target is not None and math.floor(tail_target * (len(chosen) + 1) + 0.5) > n_tail:
            side = mask & tail
            if side.any():
                mask = side
        exposed = cost is not None and len(chosen) >= params.exposure_free_top
        now = rel - cost if exposed and cost is not None else rel
        if use_mmr:
            value = lam * now - (1.0 - lam) * max_sim
            j = int(np.argmax(np.where(mask, value, -np.inf)))
        elif exposed:
            j = int(np.argmax(np.where(mask, now, -np.inf)))  # ties: the more relevant
        else:
            j = int(np.argmax(mask))  # candidates are in (penalised) relevance order
        chosen.append(j)
        eligible[j] = False
        n_oon += int(not net[j])
        n_tail += int(tail[j])
        if use_mmr:
            np.maximum(max_sim, sim[j], out=max_sim)
        if codes is not None and codes[j] >= 0:
            c = int(codes[j])
            author_count[c] = author_count.get(c, 0) + 1
            if author_count[c] >= cap:  # type: ignore[operator]
                eligible &= codes != c
    idx = np.asarray(chosen, dtype=np.int64)
    shown = np.minimum.accumulate(scores[idx]).astype(np.float32)
    return items[idx], shown
