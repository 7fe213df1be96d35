"""Hyperparameter tuning on validation data carved from train (never on test).

`tune_model` runs optuna's seeded TPE sampler over a model's declared `search_space`, scoring
each trial by a full-ranking metric on the validation split, and returns the best parameters;
with `prefer`, the trials tied with the best within validation noise (`metrics.ties`) are
decided by that second metric (the seed's problem: out-of-network discovery, issue 16.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.evaluation.evaluate import evaluate_recommendations
from serendip.evaluation.metrics import ties
from serendip.models.base import Choice, FloatRange, IntRange, SearchSpace
from serendip.models.registry import get_model_class

__all__ = [
    "TrialRecord",
    "TuningResult",
    "choose_trial",
    "evaluate_model",
    "needs_network",
    "searchable",
    "tune_model",
]


@dataclass(frozen=True, slots=True)
class TrialRecord:
    params: dict[str, Any]
    value: float
    seconds: float
    error: str = ""
    preferred: float | None = None  # the `prefer` metric's value, when tuning asked for one
    #: which search the trial belongs to when one run holds several (`fit --tune`'s source
    #: stage names its candidate, e.g. "collaborative:ials"; "" = the model's own search)
    stage: str = ""


@dataclass(frozen=True, slots=True)
class TuningResult:
    """Best parameters (merged over the base ones) and every trial, in order."""

    model: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    trials: tuple[TrialRecord, ...] = field(default_factory=tuple)
    prefer: str | None = None
    chosen_among: int = 1  # trials tied with the best by `metric` (decided by `prefer`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "prefer": self.prefer,
            "chosen_among": self.chosen_among,
            "trials": [
                {
                    "params": t.params,
                    "value": t.value,
                    "seconds": t.seconds,
                    "error": t.error,
                    "preferred": t.preferred,
                }
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


def choose_trial(
    values: list[float],
    per_user: Mapping[int, np.ndarray],
    preferred: list[float | None],
    per_user_preferred: Mapping[int, np.ndarray] | None = None,
) -> tuple[int, int]:
    """(the chosen trial, how many were tied): the best `values`; when `per_user` holds the
    trials' per-user scores, among those tied with the best (`metrics.ties`) the highest
    `preferred` (then the higher value). With `per_user_preferred` (the trials' per-user
    `preferred` scores), a tied trial wins only where its `preferred` is above the best's
    beyond noise (the best is not `metrics.ties`-tied with it): a secondary gain as noisy as
    the primary loss it costs buys nothing, so the best stays."""
    best = max(range(len(values)), key=lambda i: values[i])
    if best not in per_user:
        return best, 1
    tied = [int(i) for i in ties({str(i): v for i, v in per_user.items()}, str(best))]

    def rank(i: int) -> tuple[float, float]:
        return (float(np.nan_to_num(preferred[i] or 0.0, nan=0.0)), values[i])

    if per_user_preferred is None:
        return max(tied, key=rank), len(tied)
    reference = per_user_preferred.get(best)
    gains = [
        i
        for i in tied
        if i == best
        or (
            reference is not None
            and i in per_user_preferred
            and str(best) not in ties({str(i): per_user_preferred[i], str(best): reference}, str(i))
        )
    ]
    return max(gains, key=rank), len(tied)


def needs_network(dimension: str) -> bool:
    """Whether a search dimension is an out-of-network one (named "oon"): it needs a social
    graph and does nothing without one."""
    return "oon" in dimension


def searchable(space: SearchSpace, train: Dataset) -> SearchSpace:
    """`space` less the dimensions `train` cannot exercise (`needs_network` ones without a
    social graph): a search over them there spends trials on noise."""
    if len(train.social):
        return dict(space)
    return {k: v for k, v in space.items() if not needs_network(k)}


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
    prefer: str | None = None,
    seeds: Sequence[Mapping[str, Any]] = (),
) -> TuningResult:
    """Tune model `name` on (train, validation); both carved from the study's train split.

    The first trial always evaluates `base_params` (the model's defaults unless given), so the
    result is never worse than the defaults on validation. A trial that raises a `SerendipError`
    (e.g. a capacity error for a large setting) scores -inf and is recorded with its message.
    `prefer` (a metric of `evaluate_recommendations`, e.g. "oon_hit_rate@10"): among the trials
    whose per-user `metric` is tied with the best's (`metrics.ties`), the one with the highest
    `prefer` wins where its `prefer` is above the best's beyond noise (`choose_trial`).
    Dimensions `train` cannot exercise are left out (`searchable`). `seeds`: settings tried
    right after the defaults, before the sampler's own (each a few dimensions of `space` moved
    from the defaults; a seed naming a dimension outside `space`, e.g. one the caller fixed, is
    skipped). They count towards `n_trials` and stop at `timeout_s` like the sampled trials:
    where a trial is slow and the budget holds a handful, a seeded trial near the defaults is
    worth more than the sampler's random start.
    """
    import optuna

    from serendip.errors import SerendipError

    cls = get_model_class(name)
    base = dict(base_params or {})
    space = searchable(cls.search_space if space is None else space, train)
    records: list[TrialRecord] = []
    per_user: dict[int, np.ndarray] = {}
    per_user_preferred: dict[int, np.ndarray] = {}

    def run(params: dict[str, Any]) -> float:
        start = time.perf_counter()
        try:
            model = cls({**base, **params}).fit(train)
            preferred = None
            if prefer is None:
                value = float(evaluate_model(model, train, validation, k=k, metric=metric))
            else:
                users = validation.users.lookup(np.unique(validation.interactions.user))
                result = evaluate_recommendations(
                    model.recommend(users, k), train, validation, k=k, keep_per_user=True
                )
                value = float(result.metrics[metric])
                preferred = float(result.metrics.get(prefer, math.nan))
                if result.per_user is not None:  # one row per validation user, same order
                    per_user[len(records)] = result.per_user[metric].to_numpy(np.float64)
                    if prefer in result.per_user:
                        per_user_preferred[len(records)] = result.per_user[prefer].to_numpy(
                            np.float64
                        )
            rec = TrialRecord(
                {**base, **params}, value, time.perf_counter() - start, preferred=preferred
            )
        except SerendipError as exc:
            value = -math.inf
            rec = TrialRecord({**base, **params}, value, time.perf_counter() - start, str(exc))
        records.append(rec)
        if on_trial:
            on_trial(rec)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run({})
    start = time.perf_counter()  # the budget covers the search, as optuna's timeout did
    for extra in seeds:
        if len(records) >= n_trials or (
            timeout_s is not None and time.perf_counter() - start >= timeout_s
        ):
            break
        if set(extra) <= set(space):
            run(dict(extra))
    left = n_trials - len(records)
    spent = time.perf_counter() - start
    if space and left > 0 and (timeout_s is None or spent < timeout_s):
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(
            lambda trial: run(_suggest(trial, space)),
            n_trials=left,
            timeout=None if timeout_s is None else timeout_s - spent,
        )
    best_i, among = choose_trial(
        [r.value for r in records],
        per_user,
        [r.preferred for r in records],
        per_user_preferred,
    )
    best = records[best_i]
    return TuningResult(name, metric, best.params, best.value, tuple(records), prefer, among)
