"""Weighted hybrid: a blend of several members' scores, normalised per user."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.models.base import Choice, Evidence, ModelConfig, SearchSpace, top_k
from serendip.models.hybrid._members import (
    NORMALISATIONS,
    HybridBase,
    MemberSpec,
    Normalisation,
    context_matrix,
    normalise,
    parse_members,
)

__all__ = ["WeightTuning", "WeightedHybrid", "WeightedHybridConfig"]


#: The default blend: members, their parameters, normalisation and weights chosen on MovieLens
#: 100K validation carvings only (never on test); `serendip.evaluation.selection.select_blend`
#: (`serendip select-blend`) re-derives it, docs/research-log.md holds the search. Members
#: given as {} take their own (tuned) defaults.
TUNED_BLEND: dict[str, Any] = {
    "label": "every-non-vae/rank@c60/seeds=42,43,44,45,46,47,48,49,50,51/v0.1/v1",
    "members": {
        "ease@l200d0.7": {"l2": 200.0, "dropout": 0.7},
        "ease@350": {"l2": 350.0},
        "ials": {},
        "ials@32": {"factors": 32, "regularization": 45.0, "alpha": 7.0},
        "puresvd": {},
        "rp3beta": {},
        "item-knn": {},
        "user-knn": {},
        "nmf": {},
    },
    "weights": {
        "ease@l200d0.7": 0.2052,
        "ease@350": 0.0863,
        "ials": 0.1636,
        "ials@32": 0.1692,
        "puresvd": 0.0778,
        "rp3beta": 0.0062,
        "item-knn": 0.2232,
        "user-knn": 0.0653,
        "nmf": 0.0032,
    },
    "normalization": "rank",
    "rank_constant": 60.0,
}


def _default_members() -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in TUNED_BLEND["members"].items()}


def _default_weights() -> dict[str, float]:
    return dict(TUNED_BLEND["weights"])


class WeightedHybridConfig(ModelConfig):
    """members: {key: params}, key = registry name (optionally "name@label"); weights: {key:
    weight >= 0}, a member without a weight weighs 1 (no weights at all: the tuned ones for the
    default members, else equal); defaults: `TUNED_BLEND`, the blend chosen on MovieLens 100K
    validation. normalization: how each member's scores are put on one scale per user before
    blending ("minmax", "zscore", "rank" = 1 / (rank_constant + rank), "borda" =
    linear in the rank; statistics and ranks over the items the user has not seen).

    Per-user-activity weights: `activity_bounds` (ascending history lengths b_1 < b_2 < ...)
    split users into len(bounds) + 1 buckets, bucket j holding the users with b_j <= n < b_{j+1}
    training interactions (cold users: their context length); `activity_weights` gives one
    {key: weight} per bucket, a member missing from a bucket taking its `weights` weight. Users
    with short histories are often better served by other members than heavy users."""

    @model_validator(mode="before")
    @classmethod
    def _tuned_defaults(cls, data: Any) -> Any:
        """The default members come with their tuned weights and the normalisation those were
        tuned for, unless given (so a saved config states them)."""
        if isinstance(data, Mapping) and data.get("members", _default_members()) == (
            _default_members()
        ):
            data = dict(data)
            data.setdefault("weights", _default_weights())
            data.setdefault("normalization", TUNED_BLEND["normalization"])
            data.setdefault("rank_constant", TUNED_BLEND["rank_constant"])
        return data

    members: dict[str, dict[str, Any]] = Field(default_factory=_default_members)
    weights: dict[str, float] | None = None
    normalization: Normalisation = "minmax"  # for other members; the default ones: TUNED_BLEND's
    rank_constant: float = Field(default=60.0, ge=0.0)
    activity_bounds: list[int] = Field(default_factory=list)
    activity_weights: list[dict[str, float]] = Field(default_factory=list)

    def resolved_weights(self) -> dict[str, float]:
        """Weight per member key. Without `weights`: the tuned weights for the default members,
        else 1 each."""
        if self.weights is None:
            given = _default_weights() if self.members == _default_members() else {}
        else:
            given = self.weights
        return {k: float(given.get(k, 1.0)) for k in self.members}

    def bucket_weights(self) -> list[dict[str, float]]:
        """Weight per member key for each activity bucket (one bucket, `resolved_weights`, when
        no activity weights are configured)."""
        base = self.resolved_weights()
        if not self.activity_weights:
            return [base]
        return [{k: float(b.get(k, base[k])) for k in self.members} for b in self.activity_weights]

    @model_validator(mode="after")
    def _check(self) -> WeightedHybridConfig:
        if not self.members:
            raise ValueError("members: at least one member is needed")
        for where, weights in [("weights", self.weights or {})] + [
            (f"activity_weights[{j}]", b) for j, b in enumerate(self.activity_weights)
        ]:
            unknown = set(weights) - set(self.members)
            if unknown:
                raise ValueError(
                    f"{where} name keys that are not members: {sorted(unknown)}; members: "
                    f"{list(self.members)}"
                )
            if any(not np.isfinite(w) or w < 0 for w in weights.values()):
                raise ValueError(f"{where}: weights must be finite and non-negative")
        bounds = self.activity_bounds
        if any(b < 1 for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(
                f"activity_bounds must be strictly increasing positive lengths, got {bounds}"
            )
        if (bounds or self.activity_weights) and len(self.activity_weights) != len(bounds) + 1:
            raise ValueError(
                f"activity_weights needs one weights mapping per bucket: {len(bounds)} bounds "
                f"make {len(bounds) + 1} buckets, got {len(self.activity_weights)}"
            )
        for j, w in enumerate(self.bucket_weights()):
            if sum(w.values()) <= 0:
                where = "" if not self.activity_weights else f" in activity bucket {j}"
                raise ValueError(f"at least one member needs a positive weight{where}")
        return self


@dataclass(frozen=True, slots=True)
class WeightTuning:
    """Result of `WeightedHybrid.tune_weights`: the best flat weights (summing to 1), the
    NDCG@k on the validation users of the best blend (per activity bucket when buckets were
    searched), the NDCG@k of the configured weights, and how many users and weight vectors were
    evaluated; with activity buckets, their bounds and one weight mapping per bucket."""

    weights: Mapping[str, float]
    ndcg: float
    baseline_ndcg: float
    n_users: int
    n_evaluated: int
    activity_bounds: tuple[int, ...] = ()
    activity_weights: tuple[Mapping[str, float], ...] = ()

    def params(self) -> dict[str, Any]:
        """The tuned weights as WeightedHybrid parameters."""
        return {
            "weights": dict(self.weights),
            "activity_bounds": list(self.activity_bounds),
            "activity_weights": [dict(w) for w in self.activity_weights],
        }


class WeightedHybrid(HybridBase[WeightedHybridConfig]):
    """score(u, i) = sum_m w_m(u) * norm_u(score_m(u, i)): members' scores normalised per user
    (min-max, z-score or rank-based over the user's unseen items), then weighted; w_m(u) is the
    member's weight, or its weight in the user's activity bucket (history length) when
    `activity_bounds` are set. Members with weight 0 everywhere are fitted (so weights can change
    on reload) but not scored.

    Cold users: the same blend of the members' cold-start scores (bucket by context length).
    Explanations: the member with the largest weighted contribution to the item explains it,
    named as the "source". `tune_weights(train, validation)` searches the weights on a
    validation split.
    """

    name = "weighted-hybrid"
    description = "Normalised score blend with weights tuned on validation."
    Config: ClassVar[type[ModelConfig]] = WeightedHybridConfig
    search_space: ClassVar[SearchSpace] = {"normalization": Choice(NORMALISATIONS)}
    quick_params: ClassVar[Mapping[str, Any]] = {
        "members": {"category-popularity": {}, "popularity": {}},
        "weights": {"category-popularity": 0.7, "popularity": 0.3},
    }

    def _specs(self) -> list[MemberSpec]:
        return parse_members(self.config.members, "members")

    def _weights(self) -> dict[str, float]:
        return self.config.resolved_weights()

    def _user_weights(self, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """(n,) weight per member key for users with these history lengths (their bucket's)."""
        cfg = self.config
        buckets = cfg.bucket_weights()
        which = np.searchsorted(np.asarray(cfg.activity_bounds, np.int64), lengths, side="right")
        return {k: np.array([b[k] for b in buckets])[which] for k in cfg.members}

    # -------------------------------------------------------------- scoring
    def _member_parts(
        self, score: Callable[[str], np.ndarray], exclude: sp.csr_matrix
    ) -> dict[str, np.ndarray]:
        """Normalised scores (float64) of every member with a positive weight in some bucket."""
        cfg = self.config
        used = [k for k in cfg.members if any(b[k] > 0 for b in cfg.bucket_weights())]
        return {
            k: normalise(score(k), exclude, cfg.normalization, rank_constant=cfg.rank_constant)
            for k in used
        }

    def _blend(self, parts: Mapping[str, np.ndarray], lengths: np.ndarray) -> np.ndarray:
        w = self._user_weights(lengths)
        total = sum(w[k][:, None] * p for k, p in parts.items())
        return np.asarray(total, dtype=np.float32)

    def _lengths(self, user_idx: np.ndarray) -> np.ndarray:
        return np.diff(self.train_.indptr)[user_idx]

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        parts = self._member_parts(
            lambda k: self.members_[k]._score_warm(user_idx), self.train_[user_idx]
        )
        return self._blend(parts, self._lengths(user_idx))

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        exclude = context_matrix(context, len(self.items_))
        parts = self._member_parts(
            lambda k: np.asarray(self.members_[k]._score_cold(context))[None, :], exclude
        )
        return self._blend(parts, np.array([exclude.nnz]))[0]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        u = np.array([user_idx])
        parts = self._member_parts(lambda k: self.members_[k]._score_warm(u), self.train_[u])
        w = {k: float(v[0]) for k, v in self._user_weights(self._lengths(u)).items()}
        contrib = {k: w[k] * float(p[0, item_idx]) for k, p in parts.items()}
        best = max(contrib, key=lambda k: contrib[k])  # first member wins ties (config order)
        label = f"{self.members_[best].name}, weight {w[best]:g}"
        return self._member_explanation(best, user_idx, item_idx, contrib[best], label)

    def _similar(self, item_idx: int) -> np.ndarray:
        """Weighted blend (`weights`, not per bucket: no user here) of the min-max normalised
        similarities of the members that have one."""
        total = np.zeros(len(self.items_))
        found = False
        for k, w in self._weights().items():
            if w <= 0:
                continue
            try:
                sims = np.asarray(self.members_[k].item_similarities(item_idx), dtype=np.float64)
            except SerendipError:
                continue
            found = True
            exclude = context_matrix(np.array([item_idx]), len(self.items_))
            total += w * normalise(sims[None, :], exclude, "minmax")[0]
        if not found:
            raise SerendipError(f"model '{self.name}': none of its members defines item similarity")
        return total.astype(np.float32)

    # -------------------------------------------------------------- tuning
    def tune_weights(
        self,
        train: Dataset,
        validation: Dataset,
        *,
        k: int = 10,
        method: Literal["grid", "optuna"] = "grid",
        grid_steps: int = 4,
        n_trials: int = 60,
        max_users: int = 5000,
        activity_bounds: Sequence[int] | None = None,
    ) -> WeightTuning:
        """Search member weights that maximise NDCG@k on `validation`, a split carved from the
        training data (e.g. `serendip.evaluation.splits.validation_split(train)`): members are
        fitted on `train` once, and each weight vector only re-blends their cached scores.

        grid: every weight vector with entries in {0, 1/grid_steps, ..., 1}, up to scale;
        optuna: `n_trials` TPE trials (seeded). At most `max_users` validation users (a seeded
        sample) are scored. Does not change this model: refit with the result, e.g.
        `WeightedHybrid(model.config, **result.params()).fit(full_train)`.

        activity_bounds: also search one weight vector per history-length bucket (see
        `WeightedHybridConfig.activity_bounds`; lengths as in `train`, so scale them up when
        refitting on more data); `weights` stays the flat search's result.
        """
        from serendip.evaluation.metrics import hit_matrix, ndcg

        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        bounds = [int(b) for b in activity_bounds or []]
        if any(b < 1 for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ConfigError(
                f"activity_bounds must be strictly increasing positive lengths, got {bounds}"
            )
        probe = type(self)(
            self.config,
            weights={key: 1.0 for key in self.config.members},
            activity_bounds=[],
            activity_weights=[],
        )
        probe.fit(train)
        truth = validation.seen()
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if len(users) == 0:
            raise SerendipError("tune_weights: the validation data has no interactions")
        if len(users) > max_users:
            rng = np.random.default_rng(self.config.seed)
            users = np.sort(rng.choice(users, max_users, replace=False))
        seen = probe.train_[users]
        parts = {
            key: p.astype(np.float32)
            for key, p in probe._member_parts(
                lambda key: probe.members_[key]._score_warm(users), seen
            ).items()
        }
        keys = list(parts)
        truth_rows = truth[users]
        if method not in ("grid", "optuna"):
            raise ConfigError(f"unknown tuning method '{method}'; valid: grid, optuna")
        if method == "grid" and grid_steps < 1:
            raise ConfigError(f"grid_steps must be at least 1, got {grid_steps}")

        def evaluator(rows: np.ndarray) -> Callable[[np.ndarray], float]:
            """NDCG@k of the given validation rows for a weight vector (over `keys`)."""
            sub = {key: parts[key][rows] for key in keys}
            r, c = seen[rows].nonzero()
            truth_sub = truth_rows[rows]
            n_truth = np.diff(truth_sub.indptr)

            def evaluate(weights: np.ndarray) -> float:
                total = sum(float(w) * sub[key] for key, w in zip(keys, weights, strict=True))
                scores = np.asarray(total, dtype=np.float32)
                scores[r, c] = -np.inf
                recs, _ = top_k(scores, k)
                return float(ndcg(hit_matrix(recs, truth_sub), n_truth).mean())

            return evaluate

        def search(evaluate: Callable[[np.ndarray], float]) -> tuple[np.ndarray, float, int]:
            current = np.array([self._weights()[key] for key in keys])
            best_w, best_s = current / current.sum(), evaluate(current)
            n_eval = 1
            if method == "grid":
                seen_vectors: set[tuple[float, ...]] = set()
                for combo in itertools.product(range(grid_steps + 1), repeat=len(keys)):
                    if sum(combo) == 0:
                        continue
                    w = np.asarray(combo, dtype=np.float64) / sum(combo)
                    sig = tuple(np.round(w, 9))
                    if sig in seen_vectors:
                        continue
                    seen_vectors.add(sig)
                    s = evaluate(w)
                    n_eval += 1
                    if s > best_s + 1e-12:
                        best_w, best_s = w, s
                return best_w, best_s, n_eval
            import optuna

            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            try:
                study = optuna.create_study(
                    direction="maximize",
                    sampler=optuna.samplers.TPESampler(seed=self.config.seed),
                )

                def objective(trial: Any) -> float:
                    w = np.array([trial.suggest_float(key, 0.0, 1.0) for key in keys])
                    return evaluate(w / w.sum()) if w.sum() > 0 else 0.0

                study.optimize(objective, n_trials=n_trials)
            finally:
                optuna.logging.set_verbosity(verbosity)
            if study.best_value > best_s:
                w = np.array([study.best_params[key] for key in keys])
                best_w, best_s = w / w.sum(), float(study.best_value)
            return best_w, best_s, n_eval + n_trials

        def as_weights(w: np.ndarray) -> dict[str, float]:
            out = {key: 0.0 for key in self.config.members}
            out.update({key: float(round(x, 6)) for key, x in zip(keys, w, strict=True)})
            return out

        everyone = np.arange(len(users))
        baseline = evaluator(everyone)(np.array([self._weights()[key] for key in keys]))
        best_w, best_s, n_eval = search(evaluator(everyone))
        if not bounds:
            return WeightTuning(as_weights(best_w), best_s, baseline, len(users), n_eval)
        # NDCG is a mean over users: each bucket's weights are searched on its users alone
        which = np.searchsorted(np.asarray(bounds, np.int64), np.diff(seen.indptr), side="right")
        bucket_weights, total = [], 0.0
        for j in range(len(bounds) + 1):
            rows = np.flatnonzero(which == j)
            if len(rows) == 0:  # no validation user this active: the flat weights
                bucket_weights.append(as_weights(best_w))
                continue
            w, s, n = search(evaluator(rows))
            bucket_weights.append(as_weights(w))
            total += s * len(rows)
            n_eval += n
        return WeightTuning(
            as_weights(best_w),
            total / len(users),
            baseline,
            len(users),
            n_eval,
            activity_bounds=tuple(bounds),
            activity_weights=tuple(bucket_weights),
        )
