"""Hyperparameter tuning on validation data carved from train (never on test).

`tune_model` runs optuna's seeded TPE sampler over a model's declared `search_space`, scoring
each trial by a full-ranking metric on the validation split, and returns the best parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.evaluation.evaluate import evaluate_recommendations
from serendip.models.base import Choice, FloatRange, IntRange, SearchSpace
from serendip.models.registry import get_model_class

__all__ = ["TrialRecord", "TuningResult", "evaluate_model", "tune_model"]


@dataclass(frozen=True, slots=True)
class TrialRecord:
    params: dict[str, Any]
    value: float
    seconds: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class TuningResult:
    """Best parameters (merged over the base ones) and every trial, in order."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: tuple[TrialRecord, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "trials": [
                {"params": t.params, "value": t.value, "seconds": t.seconds, "error": t.error}
                for t in self.trials
            ],
        }


def evaluate_model(
    model: Any, train: Dataset, test: Dataset, *, k: int = 10, metric: str | None = None
) -> float | Any:
    """Fit-free scoring helper: recommend top-k for every user with test interactions and
    evaluate over full rankings. Returns the metric value if `metric` is given, else the
    `EvaluationResult`."""
    users = test.users.lookup(np.unique(test.interactions.user))
    recs = model.recommend(users, k)
    result = evaluate_recommendations(recs, train, test, k=k)
    return result.metrics[metric] if metric else result


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, IntRange):
            params[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, FloatRange):
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Choice):
            # optuna stores categorical values; index them so any JSON-able option works
            i = trial.suggest_categorical(name, list(range(len(dim.options))))
            params[name] = dim.options[i]
        else:  # pragma: no cover - a search space declares only the three kinds
            raise ConfigError(f"unknown search dimension for '{name}': {dim!r}")
    return params


def tune_model(
    name: str,
    train: Dataset,
    validation: Dataset,
    *,
    base_params: Mapping[str, Any] | None = None,
    space: SearchSpace | None = None,
    n_trials: int = 20,
    timeout_s: float | None = None,
    k: int = 10,
    metric: str = "ndcg@10",
    seed: int = 0,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Tune model `name` on (train, validation); both carved from the study's train split.

    The first trial always evaluates `base_params` (the model's defaults unless given), so the
    result is never worse than the defaults on validation. A trial that raises a `SerendipError`
    (e.g. a capacity error for a large setting) scores -inf and is recorded with its message.
    """
    import optuna

    from serendip.errors import SerendipError

    cls = get_model_class(name)
    base = dict(base_params or {})
    space = cls.search_space if space is None else space
    records: list[TrialRecord] = []

    def run(params: dict[str, Any]) -> float:
        start = time.perf_counter()
        try:
            model = cls({**base, **params}).fit(train)
            value = float(evaluate_model(model, train, validation, k=k, metric=metric))
            rec = TrialRecord({**base, **params}, value, time.perf_counter() - start)
        except SerendipError as exc:
            value = -math.inf
            rec = TrialRecord({**base, **params}, value, time.perf_counter() - start, str(exc))
        records.append(rec)
        if on_trial:
            on_trial(rec)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run({})
    if space and n_trials > 1:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(
            lambda trial: run(_suggest(trial, space)), n_trials=n_trials - 1, timeout=timeout_s
        )
    best = max(records, key=lambda r: r.value)
    return TuningResult(name, metric, best.params, best.value, tuple(records))
