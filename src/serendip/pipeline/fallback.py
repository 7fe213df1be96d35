"""Never below its best source: the fit-time check of the ranker against simpler orders, and
the orders a fallback serves.

At fit (`serendip.pipeline.ranker.train_ranker`, `FallbackParams`), the ranker's newest label
window is the validation carve: the last `label_fraction` of the interactions by time (the
temporal protocol), each user's latest share (`label_split = "per-user"`), or a seeded random
share per user (`"random"`, and whatever the split on data without timestamps: the random
protocol). On that window each validation user is ranked (over their candidates, by the stage
fitted on the past) by the ranker -- out of fold: only by ranker members that never trained on
that user -- by every candidate source alone, and by popularity; each list's NDCG@10 is scored
against the user's whole label window (full catalog, binary relevance, `evaluation.metrics`).
A member that never trained on a user may still have early-stopped on them (one number, its
iteration count, chosen on those users): a slight lean toward the ranker, on the side of
keeping what the pipeline was built around.

Three segments of users are checked apart, as each is served apart:
- `known`: users the fit saw, with a history;
- `fold-in`: users the fit never saw, with a history given at request time (a validation user
  served under another ID with the latest half of their past, the study's cold-users protocol);
- `cold`: no history at all (the cold-start path: label-window users without a past).

The rule (`choose`): the alternative with the best mean NDCG@10 replaces the ranker for the
segment when it beats it beyond the noise, i.e. when the ranker is not statistically tied with
it (`evaluation.metrics.ties`: the mean paired per-user gap above both 1% of the alternative's
mean and 2 standard errors of the paired difference); a tie keeps the ranker. A segment with
fewer than `MIN_USERS` validation users keeps the ranker. The chosen order still goes through
the re-ranking, the filters, the backfill and the explanations (`order_scores`).

`fallback.serve` overrides the rule for the segments with a history (`known`, `fold-in`):
`fit --tune` sets it where the user's own validation carving, a larger and differently cut
sample than this window, found the source alone ahead of the ranker (`forced`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from serendip.evaluation.metrics import hit_matrix, ndcg, ties
from serendip.pipeline.candidates import CandidateFrame, UserContext

__all__ = [
    "COLD",
    "FOLD_IN",
    "KNOWN",
    "MIN_USERS",
    "POPULARITY",
    "RANKER",
    "RULE",
    "SEGMENTS",
    "FallbackReport",
    "SegmentChoice",
    "choose",
    "fold_in_context",
    "order_scores",
    "segment_of",
    "top_k_from_frame",
    "validation_ndcg",
]

RANKER = "ranker"
POPULARITY = "popularity"
KNOWN = "known"
FOLD_IN = "fold-in"
COLD = "cold"
SEGMENTS: tuple[str, ...] = (KNOWN, FOLD_IN, COLD)
#: A segment with fewer validation users than this keeps the ranker (no evidence either way).
MIN_USERS = 10
RULE = (
    "per segment, the alternative (a source ranked alone, or popularity) with the best mean "
    "validation NDCG@10 replaces the ranker when it beats it beyond the noise: mean paired "
    "gap above max(1% of its mean, 2 standard errors of the paired per-user difference); "
    f"ties keep the ranker; fewer than {MIN_USERS} users keep the ranker"
)


@dataclass(frozen=True, slots=True)
class SegmentChoice:
    """One segment's comparison: mean NDCG@k per order (the ranker's out of fold), how many
    validation users, which alternative scored best and whether the ranker tied with it."""

    choice: str
    ndcg: dict[str, float]
    n_users: int
    best_alternative: str | None
    tied: bool
    #: the choice was set by `fallback.serve`, not by the rule
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "choice": self.choice,
            "ndcg": dict(self.ndcg),
            "n_users": self.n_users,
            "best_alternative": self.best_alternative,
            "tied": self.tied,
            "forced": self.forced,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SegmentChoice:
        return cls(
            choice=str(d.get("choice", RANKER)),
            ndcg={str(k): float(v) for k, v in (d.get("ndcg") or {}).items()},
            n_users=int(d.get("n_users", 0)),
            best_alternative=d.get("best_alternative"),
            tied=bool(d.get("tied", False)),
            forced=bool(d.get("forced", False)),
        )


@dataclass(frozen=True, slots=True)
class FallbackReport:
    """The check's outcome (the manifest's `meta.fallback`): the validation carve, k, and one
    `SegmentChoice` per segment checked."""

    carve: str
    k: int
    segments: dict[str, SegmentChoice] = field(default_factory=dict)
    seconds: float = 0.0

    def choice(self, segment: str) -> str:
        """What serves `segment` (the ranker where unchecked)."""
        s = self.segments.get(segment)
        return RANKER if s is None else s.choice

    @property
    def active(self) -> bool:
        """Does some segment serve another order than the ranker's?"""
        return any(s.choice != RANKER for s in self.segments.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "carve": self.carve,
            "metric": f"ndcg@{self.k} on the ranker's newest label window",
            "k": self.k,
            "rule": RULE,
            "segments": {name: s.to_dict() for name, s in self.segments.items()},
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FallbackReport:
        return cls(
            carve=str(d.get("carve", "")),
            k=int(d.get("k", 10)),
            segments={
                str(n): SegmentChoice.from_dict(s) for n, s in (d.get("segments") or {}).items()
            },
            seconds=float(d.get("seconds", 0.0)),
        )


def segment_of(ctx: UserContext) -> str:
    """The segment a request belongs to: `cold` without history, `known` for a user the fit
    saw, `fold-in` for one it never saw who brings a history."""
    if len(ctx.history) == 0:
        return COLD
    return KNOWN if ctx.user_idx >= 0 else FOLD_IN


def choose(per_user: Mapping[str, np.ndarray], serve: str | None = None) -> SegmentChoice:
    """The module docstring's rule over per-user NDCG arrays (the same users, in the same
    order, for every order; `RANKER` among them); `serve` names the order that serves
    whatever the rule finds."""
    means = {m: float(np.mean(v)) if len(v) else 0.0 for m, v in per_user.items()}
    if serve is not None:
        rule = choose(per_user)
        return replace(rule, choice=serve, forced=True)
    n = len(per_user[RANKER])
    others = [m for m in per_user if m != RANKER]
    if not others:
        return SegmentChoice(RANKER, means, n, None, False)
    best = max(others, key=lambda m: means[m])
    if n < MIN_USERS or means[best] <= means[RANKER]:
        return SegmentChoice(RANKER, means, n, best, means[best] == means[RANKER])
    tied = RANKER in ties(per_user, best)
    return SegmentChoice(RANKER if tied else best, means, n, best, tied)


def _positions(frame: CandidateFrame, primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Per frame row, its 1-based position within its user's candidates ordered by `primary`,
    then `secondary` (both descending), then the item index."""
    order = np.lexsort((frame.item, -secondary, -primary, frame.row))
    starts = np.searchsorted(frame.row[order], frame.row[order], side="left")
    pos = np.empty(len(order), np.int64)
    pos[order] = np.arange(len(order)) - starts + 1
    return pos


def order_scores(
    frame: CandidateFrame, method: str, ranker: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """float32 per frame row: scores that order each user's candidates by `method` -- a source's
    own rank (its proposals first), or the item's popularity -- ties (and the candidates the
    source did not propose) by the ranker's score. Scores are -log(position), so the re-ranking
    sees a relevance that falls with the position as a ranker's does."""
    ranker = np.asarray(ranker, dtype=np.float64)
    if method == RANKER or len(frame) == 0:
        return np.asarray(ranker, dtype=np.float32)
    if method == POPULARITY:
        primary = np.log1p(np.asarray(popularity, np.float64)[frame.item])
    else:
        rank = np.asarray(frame.rank[:, frame.sources.index(method)], np.float64)
        primary = np.where(np.isnan(rank), -np.inf, -rank)
    return (-np.log(_positions(frame, primary, ranker))).astype(np.float32)


def top_k_from_frame(frame: CandidateFrame, scores: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """int64 (n_rows, k): each row's k best candidates by score (ties by item index), -1
    padded."""
    out = np.full((n_rows, k), -1, np.int64)
    if len(frame) == 0:
        return out
    pos = _positions(frame, np.asarray(scores, np.float64), np.zeros(len(frame)))
    keep = pos <= k
    out[frame.row[keep], pos[keep] - 1] = frame.item[keep]
    return out


def fold_in_context(ctx: UserContext, share: float = 0.5) -> UserContext:
    """`ctx` as a user the fit never saw, who brings the latest `share` of their history (at
    least one item) at request time: another ID, no user index."""
    n = max(1, round(share * len(ctx.history)))
    return replace(
        ctx,
        user=f"\x00fold-in:{ctx.user}",
        user_idx=-1,
        history=ctx.history[:n],
        history_time=ctx.history_time[:n],
        history_event=ctx.history_event[:n],
    )


def validation_ndcg(
    frame_of: Callable[[Sequence[UserContext]], CandidateFrame],
    ranker_scores: Callable[[CandidateFrame, Sequence[UserContext], np.ndarray], np.ndarray],
    contexts: Sequence[UserContext],
    owners: np.ndarray,
    truth: sp.csr_matrix,
    popularity: np.ndarray,
    *,
    k: int = 10,
    batch: int = 512,
) -> dict[str, np.ndarray]:
    """Per-user NDCG@k (binary relevance over the full catalog) of each order: the ranker, every
    source of the frames, popularity. owners: each context's row in `truth` (its user index in
    the carve); ranker_scores(frame, contexts, owners of the frame's rows) gives the ranker's
    scores (out of fold). A source that proposed nothing to these users is left out (its
    order would be the ranker's)."""
    per: dict[str, list[np.ndarray]] = {}
    proposed: set[str] = set()
    for s in range(0, len(contexts), batch):
        part = contexts[s : s + batch]
        who = np.asarray(owners[s : s + batch], np.int64)
        frame = frame_of(part)
        ranked = ranker_scores(frame, part, who[frame.row])
        rows = truth[who]
        n_truth = np.diff(rows.indptr)
        methods = [RANKER, *frame.sources, POPULARITY]
        proposed.update(
            name for j, name in enumerate(frame.sources) if (~np.isnan(frame.rank[:, j])).any()
        )
        for m in methods:
            scores = order_scores(frame, m, ranked, popularity)
            recs = top_k_from_frame(frame, scores, len(part), k)
            per.setdefault(m, []).append(np.asarray(ndcg(hit_matrix(recs, rows), n_truth)))
    keep = {RANKER, POPULARITY, *proposed}
    return {m: np.concatenate(v) for m, v in per.items() if m in keep}
