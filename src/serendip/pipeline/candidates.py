"""Stage one of the two-stage recommender: what a candidate source is and what it returns.

A request is described by a `UserContext` (who the user is, what they did, whom they follow, what
they declared), so that the same sources serve offline evaluation (contexts built from a training
`Dataset`) and online serving (contexts built from live state, including users and events the
fitted artifacts never saw). Each `CandidateSource` proposes up to `n` items with a score; the
pipeline merges the proposals of all sources into one `CandidateFrame` (one row per distinct
(user, item) pair, a score and rank column per source), which the feature builder and the ranker
consume. Sources also give the evidence behind a proposal, for explanations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.serving.context import UserContext

__all__ = [
    "CandidateFrame",
    "CandidateSource",
    "Proposal",
    "UserContext",
]


@dataclass(frozen=True, slots=True, eq=False)
class Proposal:
    """One source's candidates for one user: item indices and scores (higher = better), best
    first. Lengths equal; at most the `n` asked for."""

    items: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Proposal:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32))


class CandidateSource(ABC):
    """A cheap rule or a fitted model that proposes items for a user.

    Subclasses set `name` (unique within a pipeline; used for feature names, quotas and
    explanations) and implement `fit` (returning the source, as a model's `fit` returns the
    model), `propose`, `evidence`, and `_state`/`_set_state` for the artifact format (arrays +
    JSON, no pickle). `propose_batch` may be overridden where a batch is
    much cheaper (a model's `recommend`).
    """

    name: ClassVar[str] = "source"
    #: Explanation template key (the explainer turns evidence into a sentence by this kind).
    kind: ClassVar[str] = "source"

    @abstractmethod
    def fit(self, dataset: Dataset) -> Self:
        """Learn from the training window (indices refer to `dataset`'s vocabularies); returns
        the source."""

    @abstractmethod
    def propose(self, ctx: UserContext, n: int) -> Proposal:
        """Up to n items for this user, excluding ctx.history and ctx.exclude."""

    def propose_batch(self, contexts: Sequence[UserContext], n: int) -> list[Proposal]:
        return [self.propose(c, n) for c in contexts]

    @abstractmethod
    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        """Why this source proposes `item` to this user: the history items, followees, author,
        category... with weights, strongest first. Empty when the source has nothing to say."""

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        return None


@dataclass(frozen=True, slots=True, eq=False)
class CandidateFrame:
    """The merged candidates of a batch of users: one row per distinct (user, item) pair.

    row: int64 (m,) index into the batch's contexts; item: int64 (m,) item index;
    sources: source names, in column order; score: float32 (m, n_sources), NaN where that source
    did not propose the pair; rank: float32 (m, n_sources), 1-based rank within the source's
    proposal, NaN where absent. Rows are grouped by `row` (ascending), as LambdaRank needs.
    """

    row: np.ndarray
    item: np.ndarray
    sources: tuple[str, ...]
    score: np.ndarray
    rank: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def group_sizes(self, n_rows: int) -> np.ndarray:
        return np.bincount(self.row, minlength=n_rows)
