"""Weighted hybrid: a blend of several members' scores, normalised per user."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.models.base import Choice, Evidence, ModelConfig, SearchSpace, top_k
from serendip.models.hybrid._members import (
    HybridBase,
    MemberSpec,
    Normalisation,
    context_matrix,
    members_of,
    normalise,
    parse_members,
)

__all__ = ["WeightTuning", "WeightedHybrid", "WeightedHybridConfig"]


def _default_members() -> dict[str, dict[str, Any]]:
    return members_of("ease", "ials", "multvae", "rp3beta")


def _default_weights() -> dict[str, float]:
    # tuned by `tune_weights` (grid, 4 steps, min-max) on the ML100K validation split
    return {"ease": 1 / 11, "ials": 3 / 11, "multvae": 4 / 11, "rp3beta": 3 / 11}


class WeightedHybridConfig(ModelConfig):
    """members: {key: params}, key = registry name (optionally "name@label"); weights: {key:
    weight >= 0}, a member without a weight weighs 1 (no weights at all: the tuned ones for the
    default members, else equal); normalization: how each member's scores
    are put on one scale per user before blending ("zscore" or "minmax", statistics over the
    items the user has not seen)."""

    members: dict[str, dict[str, Any]] = Field(default_factory=_default_members)
    weights: dict[str, float] | None = None
    normalization: Normalisation = "minmax"

    def resolved_weights(self) -> dict[str, float]:
        """Weight per member key. Without `weights`: the tuned weights for the default members,
        else 1 each."""
        if self.weights is None:
            given = _default_weights() if self.members == _default_members() else {}
        else:
            given = self.weights
        return {k: float(given.get(k, 1.0)) for k in self.members}

    @model_validator(mode="after")
    def _check(self) -> WeightedHybridConfig:
        if not self.members:
            raise ValueError("members: at least one member is needed")
        weights = self.weights or {}
        unknown = set(weights) - set(self.members)
        if unknown:
            raise ValueError(
                f"weights name keys that are not members: {sorted(unknown)}; members: "
                f"{list(self.members)}"
            )
        if any(not np.isfinite(w) or w < 0 for w in weights.values()):
            raise ValueError("weights must be finite and non-negative")
        if sum(self.resolved_weights().values()) <= 0:
            raise ValueError("at least one member needs a positive weight")
        return self


@dataclass(frozen=True, slots=True)
class WeightTuning:
    """Result of `WeightedHybrid.tune_weights`: the best weights (summing to 1), their NDCG@k on
    the validation users, the NDCG@k of the configured weights, and how many users and weight
    vectors were evaluated."""

    weights: Mapping[str, float]
    ndcg: float
    baseline_ndcg: float
    n_users: int
    n_evaluated: int


class WeightedHybrid(HybridBase):
    """score(u, i) = sum_m w_m * norm_u(score_m(u, i)): members' scores normalised per user
    (z-score or min-max over the user's unseen items), then weighted. Members with weight 0 are
    fitted (so weights can change on reload) but not scored.

    Cold users: the same blend of the members' cold-start scores. Explanations: the member with
    the largest weighted contribution to the item explains it, named as the "source".
    `tune_weights(train, validation)` searches the weights on a validation split.
    """

    name = "weighted-hybrid"
    description = "Normalised score blend with weights tuned on validation."
    Config: ClassVar[type[ModelConfig]] = WeightedHybridConfig
    search_space: ClassVar[SearchSpace] = {"normalization": Choice(("zscore", "minmax"))}
    quick_params: ClassVar[Mapping[str, Any]] = {
        "members": {"category-popularity": {}, "popularity": {}},
        "weights": {"category-popularity": 0.7, "popularity": 0.3},
    }

    def _cfg(self) -> WeightedHybridConfig:
        return self.config  # type: ignore[return-value]

    def _specs(self) -> list[MemberSpec]:
        return parse_members(self._cfg().members, "members")

    def _weights(self) -> dict[str, float]:
        return self._cfg().resolved_weights()

    # -------------------------------------------------------------- scoring
    def _member_parts(
        self, score: Callable[[str], np.ndarray], exclude: sp.csr_matrix
    ) -> dict[str, np.ndarray]:
        """Normalised scores (float64) of every member with a positive weight."""
        method = self._cfg().normalization
        return {
            k: normalise(score(k), exclude, method) for k, w in self._weights().items() if w > 0
        }

    def _blend(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        w = self._weights()
        total = sum(w[k] * p for k, p in parts.items())
        return np.asarray(total, dtype=np.float32)

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        parts = self._member_parts(
            lambda k: self.members_[k]._score_warm(user_idx), self.train_[user_idx]
        )
        return self._blend(parts)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        exclude = context_matrix(context, len(self.items_))
        parts = self._member_parts(
            lambda k: np.asarray(self.members_[k]._score_cold(context))[None, :], exclude
        )
        return self._blend(parts)[0]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        u = np.array([user_idx])
        parts = self._member_parts(lambda k: self.members_[k]._score_warm(u), self.train_[u])
        w = self._weights()
        contrib = {k: w[k] * float(p[0, item_idx]) for k, p in parts.items()}
        best = max(contrib, key=lambda k: contrib[k])  # first member wins ties (config order)
        label = f"{self.members_[best].name}, weight {w[best]:g}"
        return self._member_explanation(best, user_idx, item_idx, contrib[best], label)

    def _similar(self, item_idx: int) -> np.ndarray:
        """Weighted blend of the min-max normalised similarities of the members that have one."""
        total = np.zeros(len(self.items_))
        found = False
        for k, w in self._weights().items():
            if w <= 0:
                continue
            try:
                sims = np.asarray(self.members_[k]._similar(item_idx), dtype=np.float64)
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
    ) -> WeightTuning:
        """Search member weights that maximise NDCG@k on `validation`, a split carved from the
        training data (e.g. `serendip.evaluation.splits.validation_split(train)`): members are
        fitted on `train` once, and each weight vector only re-blends their cached scores.

        grid: every weight vector with entries in {0, 1/grid_steps, ..., 1}, up to scale;
        optuna: `n_trials` TPE trials (seeded). At most `max_users` validation users (a seeded
        sample) are scored. Does not change this model: refit with the result, e.g.
        `WeightedHybrid(model.config, weights=result.weights).fit(full_train)`.
        """
        from serendip.evaluation.metrics import hit_matrix, ndcg

        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        probe = type(self)(self.config, weights={key: 1.0 for key in self._cfg().members})
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
        r, c = seen.nonzero()
        truth_rows = truth[users]
        n_truth = np.diff(truth_rows.indptr)

        def evaluate(weights: np.ndarray) -> float:
            total = sum(float(w) * parts[key] for key, w in zip(keys, weights, strict=True))
            scores = np.asarray(total, dtype=np.float32)
            scores[r, c] = -np.inf
            recs, _ = top_k(scores, k)
            return float(ndcg(hit_matrix(recs, truth_rows), n_truth).mean())

        current = np.array([self._weights()[key] for key in keys])
        baseline = evaluate(current)
        best_w, best_s = current / current.sum(), baseline
        n_eval = 1
        if method == "grid":
            if grid_steps < 1:
                raise ConfigError(f"grid_steps must be at least 1, got {grid_steps}")
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
        elif method == "optuna":
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
            n_eval += n_trials
            if study.best_value > best_s:
                w = np.array([study.best_params[key] for key in keys])
                best_w, best_s = w / w.sum(), float(study.best_value)
        else:
            raise ConfigError(f"unknown tuning method '{method}'; valid: grid, optuna")
        weights = {key: 0.0 for key in self._cfg().members}
        weights.update({key: float(round(w, 6)) for key, w in zip(keys, best_w, strict=True)})
        return WeightTuning(weights, best_s, baseline, len(users), n_eval)
