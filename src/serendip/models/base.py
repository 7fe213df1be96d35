"""The `Recommender` contract every model of the zoo implements.

Batch first, as in `implicit`: `recommend` takes many users and returns a `RecLists` of dense
(n_users, k) arrays. External string IDs at the edges; inside, a model scores dense item indices
of the vocabulary it was fitted with. A subclass implements `_fit` and `_score_warm`; the base class
does the rest (seen-item masking, candidate sets, filters, top-k, cold start, save/load).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from serendip.data.dataset import Dataset, MatrixConfig
from serendip.data.vocabulary import Vocabulary, shared_vocabularies
from serendip.errors import ConfigError, NotFittedError, SerendipError, config_error_from

__all__ = [
    "Choice",
    "Component",
    "Evidence",
    "Explanation",
    "Filters",
    "FloatRange",
    "IntRange",
    "ItemFilter",
    "ModelConfig",
    "RecLists",
    "RecRequest",
    "Recommender",
    "empty_lists",
    "history_of",
    "resolve_users",
    "top_k",
]


# ----------------------------------------------------------------------------- configs
class ModelConfig(BaseModel):
    """Base of every model's hyperparameters: frozen, validated, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 42


@dataclass(frozen=True, slots=True)
class IntRange:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True, slots=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[Any, ...]


SearchSpace = Mapping[str, IntRange | FloatRange | Choice]

ConfigT = TypeVar("ConfigT", bound=BaseModel, covariant=True)
ModelConfigT = TypeVar("ModelConfigT", bound=ModelConfig, covariant=True)


# ----------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True, eq=False)
class RecLists:
    """Top-k recommendations for a batch of users.

    users: object array (n,) of external user IDs, in the order asked;
    items: int64 (n, k) item indices into `item_vocab`, best first, -1 = no item (short list);
    scores: float32 (n, k), -inf where items is -1.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    item_vocab: Vocabulary

    def __len__(self) -> int:
        return len(self.users)

    @property
    def k(self) -> int:
        return int(self.items.shape[1]) if self.items.ndim == 2 else 0

    def item_ids(self, row: int) -> list[str]:
        """External item IDs of one user's list (padding dropped)."""
        idx = self.items[row]
        return [str(x) for x in self.item_vocab.lookup(idx[idx >= 0])]

    def to_frame(self) -> pd.DataFrame:
        """Long format: user, item, rank (1-based), score; padding dropped."""
        rows, cols = np.nonzero(self.items >= 0)
        return pd.DataFrame(
            {
                "user": self.users[rows],
                "item": self.item_vocab.lookup(self.items[rows, cols]),
                "rank": (cols + 1).astype(np.int64),
                "score": self.scores[rows, cols].astype(np.float64),
            }
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence behind a recommendation.

    kind: "item" (a history item), "user" (a neighbour), "followee", "author", "word", "factor",
    "feature", "source", "popularity"; id: external ID or feature name; weight: its contribution.
    """

    kind: str
    id: str
    weight: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why `item` is recommended to `user`: structured evidence, strongest first, and a sentence."""

    user: str
    item: str
    model: str
    score: float
    evidence: tuple[Evidence, ...] = ()
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "item": self.item,
            "model": self.model,
            "score": float(self.score),
            "text": self.text,
            "evidence": [
                {"kind": e.kind, "id": e.id, "weight": float(e.weight), "label": e.label}
                for e in self.evidence
            ],
        }


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items may be recommended: include/exclude by ID, category or author."""

    exclude_items: frozenset[str] = frozenset()
    include_categories: frozenset[str] | None = None
    exclude_authors: frozenset[str] = frozenset()

    def allowed(
        self, dataset_items: Vocabulary, categories: np.ndarray, authors: np.ndarray
    ) -> np.ndarray:
        """Boolean mask over item indices."""
        mask = np.ones(len(dataset_items), dtype=bool)
        if self.exclude_items:
            idx = dataset_items.indices(list(self.exclude_items))
            mask[idx[idx >= 0]] = False
        if self.include_categories is not None:
            mask &= np.isin(categories, list(self.include_categories))
        if self.exclude_authors:
            mask &= ~np.isin(authors, list(self.exclude_authors))
        return mask


#: What `recommend` accepts as `filters`: an `ItemFilter` or a function mapping item indices to a
#: bool mask of the allowed ones.
Filters = ItemFilter | Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True, eq=False)
class RecRequest:
    """One `recommend` call as the template hands it to `Recommender._recommend_rows`.

    users: object (n,) external user IDs, in the order asked; user_idx: int64 (n,) their indices
    in the fitted user vocabulary, -1 = unknown (the cold-start path); k: list length (>= 1);
    allowed: bool (n_items,) the items the call may return (inside `candidates`, passing
    `filters`), None when neither restricts anything. The rest as `recommend` took them
    (`candidates` as an object array of external item IDs).
    """

    users: np.ndarray
    user_idx: np.ndarray
    k: int
    allowed: np.ndarray | None = None
    exclude_seen: bool = True
    candidates: np.ndarray | None = None
    filters: Filters | None = None
    context: Mapping[str, Sequence[str]] | None = None
    batch_size: int | None = None

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> RecRequest:
        """The same request for a subset of its users (row positions or a bool mask)."""
        return replace(self, users=self.users[rows], user_idx=self.user_idx[rows])


#: Up to this many users are resolved one by one (`resolve_users`).
_FEW_USERS = 64


def resolve_users(
    users: Sequence[str] | np.ndarray | str, k: int, vocab: Vocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """The opening of every batch `recommend`: `k` checked (a `ConfigError` below 1), `users` as
    an object array of external IDs (a single string is one user) and their int64 indices in
    `vocab` (-1 = unknown)."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    user_ids = np.asarray([users] if isinstance(users, str) else list(users), dtype=object)
    if len(user_ids) <= _FEW_USERS:
        # a request's one user: the vectorised lookup builds a pandas index per call (0.1 ms
        # and more), as much as a hundred single lookups
        return user_ids, np.array([vocab.get(str(u)) for u in user_ids], dtype=np.int64)
    return user_ids, vocab.indices(user_ids)


def _seen_entries(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`matrix[rows].nonzero()` -- (position in `rows`, column) of every nonzero stored in the
    given CSR rows -- read in place, without the sub-matrix and its COO copy."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lens = ends - starts
    owner = np.repeat(np.arange(len(rows)), lens)
    pos = (
        np.repeat(starts, lens)
        + np.arange(int(lens.sum()))
        - np.repeat(np.cumsum(lens) - lens, lens)
    )
    keep = matrix.data[pos] != 0
    return owner[keep], matrix.indices[pos[keep]].astype(np.int64)


def empty_lists(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores) of n users' lists of k with nothing in them yet: int64 -1 padding and
    float32 -inf, the `RecLists` convention."""
    return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense (n, m) score matrix, best first; -inf entries become -1.

    Ties break by lower item index (stable), so results are deterministic.
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    part = (
        np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        if kk < m
        else np.tile(np.arange(m), (n, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: primary key -score, secondary key item index (for deterministic ties)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    sc = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    idx[~np.isfinite(sc) & (sc < 0)] = -1
    if kk < k:
        idx = np.hstack([idx, np.full((n, k - kk), -1, np.int64)])
        sc = np.hstack([sc, np.full((n, k - kk), -np.inf, np.float32)])
    return idx, sc


# ----------------------------------------------------------------------------- the contract
class Component(Generic[ConfigT]):
    """What every fitted part shares, models of the zoo and the pipeline's candidate sources
    alike: hyperparameters in a frozen, validated `Config` (a pydantic model, unknown keys
    rejected with the list of valid ones), `get_params`, a readable repr, and a clear error
    when used before `fit`. `self.config` is typed by the class's parameter, e.g.
    `class EASE(Recommender[EASEConfig])`, so a subclass reads its own fields without a cast.
    """

    name: ClassVar[str] = "component"
    Config: ClassVar[type[BaseModel]]
    #: What `name` names in error messages ("model", "source").
    role: ClassVar[str] = "component"
    #: How to get a fitted one, for the not-fitted error.
    fit_hint: ClassVar[str] = "fit(dataset)"
    config: ConfigT

    def __init__(self, config: BaseModel | Mapping[str, Any] | None = None, **params: Any) -> None:
        try:
            if isinstance(config, BaseModel):
                if params:
                    config = config.model_copy(update=params)
                    config = self.Config.model_validate(config.model_dump())
            else:
                config = self.Config(**{**dict(config or {}), **params})
        except ValidationError as exc:
            raise config_error_from(
                exc,
                f"invalid parameters for {self.role} '{self.name}'",
                valid=self.Config.model_fields,
            ) from None
        self.config = cast(ConfigT, config)
        self._fitted = False

    def get_params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(
                f"{self.role} '{self.name}' is not fitted: call {self.fit_hint} first"
            )


class Recommender(Component[ModelConfigT], ABC):
    """Base class of every model, generic in its config (`Recommender[EASEConfig]`).

    Subclasses set `name`, `description`, `Config`, optionally `search_space` and `quick_params`
    (fits in seconds on the `tiny` preset: contract tests, the quick study), and implement:
    - `_fit(dataset)`, with `train_` (binary CSR of the training pairs), `users_`, `items_`
      and `popularity_` already set;
    - `_score_warm(user_idx)`: float32 (len(user_idx), n_items) scores for known users;
    - optionally `_score_cold(context)` (an unknown user's known item indices, e.g. fold-in
      history), `_similar`, `_explain`, `_update`, and `_recommend_rows(request)` where a model
      ranks other than by scoring the catalog (ANN, members' lists, a pipeline);
    - `_state()` / `_set_state(state)` for save/load: NumPy/SciPy arrays and a JSON dict.
    Learned state ends in `_` and is set only by `fit`/`load` (scikit-learn's convention).
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    family: ClassVar[str] = ""
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    role: ClassVar[str] = "model"
    fit_hint: ClassVar[str] = "fit(dataset) or load(dir)"
    search_space: ClassVar[SearchSpace] = {}
    quick_params: ClassVar[Mapping[str, Any]] = {}
    #: True when `update(events)` folds new interactions in without a refit.
    supports_update: ClassVar[bool] = False
    #: The matrix a model learns from; families override (e.g. weighted for iALS).
    matrix_config: ClassVar[MatrixConfig] = MatrixConfig(binary=True)

    # -------------------------------------------------------------- fitting
    def fit(self, dataset: Dataset) -> Self:
        """Learn from `dataset`; returns self. Sets `users_`, `items_`, `train_`, `popularity_`."""
        start = time.perf_counter()
        self.users_ = dataset.users
        self.items_ = dataset.items
        self.train_ = dataset.seen()
        self.popularity_ = np.asarray(self.train_.sum(axis=0)).ravel().astype(np.float32)
        self.item_category_ = np.asarray(dataset.item_meta.category, dtype=object)
        self.item_author_ = np.asarray(dataset.item_meta.author, dtype=object)
        self._fit(dataset)
        self.fit_seconds_ = time.perf_counter() - start
        self._fitted = True
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset) -> None: ...

    @abstractmethod
    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        """float32 (len(user_idx), n_items) scores for users of the fitted vocabulary."""

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        """Scores (n_items,) for a user the model never saw. `context`: item indices the caller
        knows the user interacted with (may be empty). Default: global popularity."""
        return self.popularity_.astype(np.float32)

    # -------------------------------------------------------------- recommending
    def _allowed_mask(
        self,
        candidates: Iterable[str] | np.ndarray | None,
        filters: Filters | None,
    ) -> np.ndarray | None:
        """bool (n_items,): the items a `recommend` call may return (inside `candidates`, passing
        `filters`); None when neither restricts anything."""
        if candidates is None and filters is None:
            return None
        n_items = len(self.items_)
        allowed = np.ones(n_items, dtype=bool)
        if candidates is not None:
            cidx = self.items_.indices(np.asarray(list(candidates), dtype=object))
            allowed[:] = False
            allowed[cidx[cidx >= 0]] = True
        if isinstance(filters, ItemFilter):
            allowed &= filters.allowed(self.items_, self.item_category_, self.item_author_)
        elif filters is not None:
            allowed &= np.asarray(filters(np.arange(n_items)), dtype=bool)
        return allowed

    def recommend(
        self,
        users: Sequence[str] | np.ndarray | str,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Iterable[str] | np.ndarray | None = None,
        filters: Filters | None = None,
        context: Mapping[str, Sequence[str]] | None = None,
        batch_size: int | None = None,
    ) -> RecLists:
        """Top-k items for each user, best first.

        users: external IDs; unknown ones take the cold-start path (`_score_cold`), using their
        `context` history (external item IDs) where given. exclude_seen: drop training items (and
        context items). candidates: restrict to these item IDs. filters: an `ItemFilter` or a
        function mapping item indices -> bool mask of allowed ones. batch_size: users scored at
        once (default: as many as fit about 32M scores).

        The template of every model: it checks, normalises and resolves the request once, and
        `_recommend_rows` ranks.
        """
        self._check_fitted()
        user_ids, user_idx = resolve_users(users, k, self.users_)
        cand = None if candidates is None else np.asarray(list(candidates), dtype=object)
        request = RecRequest(
            users=user_ids,
            user_idx=user_idx,
            k=k,
            allowed=self._allowed_mask(cand, filters),
            exclude_seen=exclude_seen,
            candidates=cand,
            filters=filters,
            context=context,
            batch_size=batch_size,
        )
        items, scores = self._recommend_rows(request)
        return RecLists(user_ids, items, scores, self.items_)

    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """items int64 (n, k) and scores float32 (n, k) of the request's users, row for row (the
        `RecLists` convention). Default, exact: known users scored by `_score_warm` in batches,
        unknown ones by `_score_cold` one at a time, then masked (not allowed, seen, context)
        and cut by `top_k`."""
        n_items = len(self.items_)
        allowed = request.allowed
        uidx = request.user_idx
        batch = request.batch_size or max(1, min(1024, (1 << 25) // max(n_items, 1)))
        out_items, out_scores = empty_lists(len(request), request.k)
        warm_rows = np.flatnonzero(uidx >= 0)
        for start in range(0, len(warm_rows), batch):
            rows = warm_rows[start : start + batch]
            scores = np.asarray(self._score_warm(uidx[rows]), dtype=np.float32).copy()
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            if request.exclude_seen:
                train = self.train_
                if isinstance(train, sp.csr_matrix):
                    r, c = _seen_entries(train, uidx[rows])
                else:
                    r, c = train[uidx[rows]].nonzero()
                scores[r, c] = -np.inf
            if request.context:
                self._mask_context(
                    scores, request.users[rows], request.context, request.exclude_seen
                )
            out_items[rows], out_scores[rows] = top_k(scores, request.k)
        for row in np.flatnonzero(uidx < 0):
            hist = self._context_indices(str(request.users[row]), request.context)
            scores = np.asarray(self._score_cold(hist), dtype=np.float32).copy()
            if allowed is not None:
                scores[~allowed] = -np.inf
            if request.exclude_seen and len(hist):
                scores[hist] = -np.inf
            out_items[row], out_scores[row] = (a[0] for a in top_k(scores[None, :], request.k))
        return out_items, out_scores

    def _context_indices(
        self, user: str, context: Mapping[str, Sequence[str]] | None
    ) -> np.ndarray:
        if not context or user not in context:
            return np.zeros(0, np.int64)
        idx = self.items_.indices(np.asarray(list(context[user]), dtype=object))
        return idx[idx >= 0]

    def _mask_context(
        self,
        scores: np.ndarray,
        users: np.ndarray,
        context: Mapping[str, Sequence[str]],
        exclude: bool,
    ) -> None:
        if not exclude:
            return
        for r, u in enumerate(users):
            hist = self._context_indices(str(u), context)
            if len(hist):
                scores[r, hist] = -np.inf

    def score(self, user: str, items: Sequence[str] | np.ndarray) -> np.ndarray:
        """Scores (float32) of the given items for one user; NaN for unknown items."""
        self._check_fitted()
        iidx = self.items_.indices(np.asarray(list(items), dtype=object))
        u = self.users_.get(str(user))
        full = (
            self._score_warm(np.array([u]))[0]
            if u >= 0
            else self._score_cold(np.zeros(0, np.int64))
        )
        out = np.full(len(iidx), np.nan, np.float32)
        ok = iidx >= 0
        out[ok] = np.asarray(full, dtype=np.float32)[iidx[ok]]
        return out

    def similar_items(self, item: str, k: int = 10) -> RecLists:
        """The k items most similar to `item` (the item itself excluded)."""
        self._check_fitted()
        i = self.items_.get(str(item))
        if i < 0:
            raise SerendipError(f"unknown item '{item}'")
        sims = np.asarray(self._similar(i), dtype=np.float32).copy()
        sims[i] = -np.inf
        idx, sc = top_k(sims[None, :], k)
        return RecLists(np.array([str(item)], dtype=object), idx, sc, self.items_)

    def item_similarities(self, item_idx: int) -> np.ndarray:
        """Similarity of every item (dense, by item index) to item `item_idx`, as
        `similar_items` ranks them; `SerendipError` where the model defines no similarity."""
        return np.asarray(self._similar(item_idx))

    def _similar(self, item_idx: int) -> np.ndarray:
        raise SerendipError(f"model '{self.name}' does not define item similarity")

    def explain(self, user: str, item: str) -> Explanation:
        """Structured evidence for recommending `item` to `user`."""
        evidence, text = self._evidence_of(user, item)
        score = float(self.score(user, [item])[0])
        return Explanation(str(user), str(item), self.name, score, evidence, text)

    def evidence(self, user: str, item: str) -> tuple[Evidence, ...]:
        """`explain(user, item).evidence` without the score (which scores the whole catalog
        for the user: what a caller that only cites the evidence need not pay)."""
        return self._evidence_of(user, item)[0]

    def _evidence_of(self, user: str, item: str) -> tuple[tuple[Evidence, ...], str]:
        self._check_fitted()
        i = self.items_.get(str(item))
        if i < 0:
            raise SerendipError(f"unknown item '{item}'")
        u = self.users_.get(str(user))
        if u < 0:
            popular = Evidence(
                "popularity", str(item), float(self.popularity_[i]), "cold-start: popular"
            )
            return (popular,), "Popular with everyone"
        found, text = self._explain(u, i)
        return tuple(found), text

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        """Default: the user's history items most similar to the item, where similarity exists."""
        hist = self.train_.indices[self.train_.indptr[user_idx] : self.train_.indptr[user_idx + 1]]
        try:
            sims = np.asarray(self._similar(item_idx), dtype=np.float64)
        except SerendipError:
            return [
                Evidence("popularity", self.items_.id(item_idx), float(self.popularity_[item_idx]))
            ], ""
        if len(hist) == 0:
            return [], ""
        order = np.argsort(-sims[hist], kind="stable")[:3]
        ev = [Evidence("item", self.items_.id(int(hist[j])), float(sims[hist[j]])) for j in order]
        return ev, f"Because you interacted with {ev[0].id}" if ev else ""

    # -------------------------------------------------------------- online updates
    def update(self, events: pd.DataFrame) -> Self:
        """Fold in new interactions (external IDs: user, item, optional timestamp/event/value)
        without a full refit. Only for families with `supports_update`."""
        self._check_fitted()
        if not self.supports_update:
            raise SerendipError(f"model '{self.name}' cannot fold in events; refit it instead")
        self._update(events)
        return self

    def _update(self, events: pd.DataFrame) -> None:
        raise NotImplementedError

    # -------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray | sp.spmatrix], dict[str, Any]]:
        """Arrays (NumPy or SciPy sparse) and JSON-safe metadata that `_set_state` restores."""
        return {}, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Restore what `_state` returned (default: nothing to restore)."""
        return None

    def save(self, directory: str | Path, *, sections: Mapping[str, Any] | None = None) -> Path:
        """Write the artifact: manifest.json + .npy/.npz arrays + vocabularies. No pickle.
        `sections`: further top-level manifest entries (e.g. `tuning`)."""
        self._check_fitted()
        from serendip.models.artifacts import write_artifact

        arrays, meta = self._state()
        return write_artifact(
            Path(directory),
            model=self.name,
            config=self.config.model_dump(mode="json"),
            users=self.users_,
            items=self.items_,
            arrays={**self._core_state(), **arrays},
            meta={"fit_seconds": getattr(self, "fit_seconds_", None), **meta},
            extra=self._save_extra,
            sections=sections,
        )

    def _core_state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        """What `fit` took from the dataset besides the vocabularies, as arrays: every artifact
        holds them beside the model's own `_state`, and `_restore_core` reads them back."""
        return {
            "_train": self.train_,
            "_popularity": self.popularity_,
            "_item_category": self.item_category_.astype(str),
            "_item_author": self.item_author_.astype(str),
        }

    def _restore_core(
        self, arrays: Mapping[str, Any], users: Vocabulary, items: Vocabulary
    ) -> None:
        """Set back what `fit` takes from the dataset: the vocabularies and `_core_state`."""
        self.users_ = users
        self.items_ = items
        self.train_ = sp.csr_matrix(arrays["_train"])
        self.popularity_ = np.asarray(arrays["_popularity"], dtype=np.float32)
        self.item_category_ = np.asarray(arrays["_item_category"], dtype=object)
        self.item_author_ = np.asarray(arrays["_item_author"], dtype=object)

    def _save_extra(self, directory: Path) -> None:
        """Write what does not fit `_state` (e.g. a hybrid's member artifacts, in
        subdirectories) into the artifact directory being written; default: nothing."""
        return None

    def _load_extra(self, directory: Path) -> None:
        """Read back what `_save_extra` wrote; called by `load` after `_set_state`."""
        return None

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load any saved model (dispatching on the manifest's model name)."""
        from serendip.models.artifacts import read_artifact
        from serendip.models.registry import get_model_class

        with shared_vocabularies():  # parts saved with the same IDs share one vocabulary
            art = read_artifact(Path(directory))
            model_cls = (
                get_model_class(art.model) if cls is Recommender or cls.name != art.model else cls
            )
            if cls is not Recommender and not issubclass(model_cls, cls):
                raise SerendipError(f"{directory} holds a '{art.model}' model, not '{cls.name}'")
            model = model_cls(art.config)
            model._restore_core(art.arrays, art.users, art.items)
            model.fit_seconds_ = art.meta.get("fit_seconds")
            model._set_state(art.arrays, art.meta)
            model._load_extra(Path(directory))
        model._fitted = True
        return model


def history_of(matrix: sp.csr_matrix, user_idx: int) -> np.ndarray:
    """Item indices of one CSR row."""
    return matrix.indices[matrix.indptr[user_idx] : matrix.indptr[user_idx + 1]]
