"""What re-ranking knows about the catalog and about what was served.

`diversity_vectors`: the content vectors MMR's similarity is taken over; `CatalogRules` and
`allowed_candidates`: the filters no ranking may break (seen, blocked, removed, not yet
published, the user's own items); `ExposureCounter`: how often each item was already shown in a
batch (or by a serving process) -- the one state across users, so that later lists spread over
the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from serendip.data.dataset import ItemTable
from serendip.pipeline._arrays import among
from serendip.pipeline.candidates import UserContext

__all__ = [
    "CatalogRules",
    "ExposureCounter",
    "allowed_candidates",
    "diversity_vectors",
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
        ok &= ~among(items, ctx.exclude)
    if exclude_seen and len(ctx.history):
        ok &= ~among(items, ctx.history)
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
