"""Fit a model tuned on the user's own data: carve a validation split the way the user will judge
the model, search the model's space with `tune_model`, refit the best parameters on all the data,
and record what was done (`TuningRecord`) in the saved artifact's manifest.

What `serendip fit --tune` runs. The carving follows the study's protocols: `temporal` (the newest
20% of interactions are validation; the default when the data has timestamps), `leave-last` (each
user's newest item) or `random` (a random 20% of each user's items; the default without
timestamps). Parameters given by the user are fixed: the search covers the other dimensions.
The carving also sets what a model must learn the same way (`implied_params`): the pipeline's
ranker takes its label windows as the carving is cut -- random windows on a random carving,
as the study gives it (`PipelineSpec.protocol_params`) -- unless the user fixed them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError
from serendip.evaluation.splits import validation_split
from serendip.evaluation.tuning import TrialRecord, tune_model
from serendip.models.registry import get_model_class

__all__ = [
    "DEFAULT_TRIALS",
    "TUNE_PROTOCOLS",
    "TuningRecord",
    "check_tuning_options",
    "choose_protocol",
    "implied_params",
    "save_tuned",
    "tune_and_fit",
]

#: Validation carvings `tune_and_fit` offers (the study's protocols a plain fit can judge by).
TUNE_PROTOCOLS: tuple[str, ...] = ("temporal", "leave-last", "random")
#: Trials when neither a trial count nor a time budget is given.
DEFAULT_TRIALS = 20
#: Trial cap under a time budget alone (the budget is what stops the search).
_BUDGET_TRIAL_CAP = 100_000
_METRIC = "ndcg@10"


def _protocol_params(protocol: str, seed: int) -> dict[str, Any]:
    from serendip.evaluation.study.config import DEFAULT_PROTOCOL_PARAMS

    params = dict(DEFAULT_PROTOCOL_PARAMS[protocol])
    if "seed" in params:
        params["seed"] = seed
    return params


def check_tuning_options(protocol: str | None, trials: int | None, budget_s: float | None) -> None:
    """Raise `ConfigError` for options that cannot go together (before any data is read)."""
    if trials is not None and budget_s is not None:
        raise ConfigError("give either --trials or --budget, not both")
    if protocol is not None and protocol not in TUNE_PROTOCOLS:
        raise ConfigError(f"unknown protocol '{protocol}'; valid: {', '.join(TUNE_PROTOCOLS)}")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if budget_s is not None and not budget_s > 0:
        raise ConfigError(f"--budget must be a positive number of minutes, got {budget_s / 60:g}")


def choose_protocol(dataset: Dataset, protocol: str | None = None) -> str:
    """The validation carving: `protocol` when given (checked against the data), else
    `temporal` when the interactions have timestamps and `random` when they do not."""
    has_time = dataset.interactions.has_timestamps
    if protocol is None:
        return "temporal" if has_time else "random"
    if protocol not in TUNE_PROTOCOLS:
        raise ConfigError(f"unknown protocol '{protocol}'; valid: {', '.join(TUNE_PROTOCOLS)}")
    if protocol != "random" and not has_time:
        raise DataError(
            f"--protocol {protocol} needs interaction timestamps, and the interactions have "
            "none; use --protocol random"
        )
    return protocol


def implied_params(model_name: str, protocol: str, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters the carving implies for `model_name` (the study's per-protocol parameters of
    the pipeline), less those the user fixed."""
    if model_name != "pipeline":
        return {}
    from serendip.evaluation.study.config import PipelineSpec

    implied = PipelineSpec().protocol_params.get(protocol, {})
    return {k: v for k, v in implied.items() if not _is_fixed(k, fixed)}


def _is_fixed(key: str, fixed: Mapping[str, Any]) -> bool:
    """Whether search dimension `key` is set by the user's parameters: by its name, or for a
    dotted key (the pipeline's `ranker.n_estimators`) through nested groups holding its path."""
    parts = key.split(".")
    for i in range(1, len(parts) + 1):
        node: Any = fixed.get(".".join(parts[:i]), _MISSING)
        for part in parts[i:]:
            node = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
        if node is not _MISSING:
            return True
    return False


_MISSING = object()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class TuningRecord:
    """What `tune_and_fit` did: written as the `tuning` entry of the artifact's manifest."""

    model: str
    protocol: str
    protocol_params: dict[str, Any]
    metric: str
    trials: int
    requested_trials: int | None
    budget_s: float | None
    fixed_params: dict[str, Any]
    searched: tuple[str, ...]
    best_params: dict[str, Any]
    best_value: float
    default_value: float
    failed_trials: int
    validation: dict[str, int]
    tune_seconds: float
    refit_seconds: float
    seconds: float
    seed: int
    trial_values: tuple[float, ...] = field(default_factory=tuple)
    #: parameters the carving set (`implied_params`), kept fixed through the search
    implied_params: dict[str, Any] = field(default_factory=dict)
    #: the tie-break among trials within validation noise of the best (None: the best wins)
    prefer: str | None = None
    chosen_among: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "protocol_params": self.protocol_params,
            "metric": f"{self.metric} on validation",
            "trials": self.trials,
            "requested_trials": self.requested_trials,
            "budget_s": self.budget_s,
            "fixed_params": self.fixed_params,
            "implied_params": self.implied_params,
            "searched": list(self.searched),
            "best_params": self.best_params,
            "best_validation": _finite(self.best_value),
            "default_validation": _finite(self.default_value),
            "failed_trials": self.failed_trials,
            "validation": self.validation,
            "trial_values": [_finite(v) for v in self.trial_values],
            "tune_seconds": round(self.tune_seconds, 3),
            "refit_seconds": round(self.refit_seconds, 3),
            "seconds": round(self.seconds, 3),
            "seed": self.seed,
            "ties_decided_by": self.prefer,
            "tied_trials": self.chosen_among,
        }


#: Where the data has a social graph, tuning breaks validation ties by out-of-network hits: the
#: setting that discovers beyond the user's network wins among equally accurate ones (16.4).
DISCOVERY_METRIC = "oon_hit_rate@10"


def tune_and_fit(
    dataset: Dataset,
    model_name: str,
    *,
    params: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    trials: int | None = None,
    budget_s: float | None = None,
    seed: int = 0,
    progress: Callable[[TrialRecord], None] | None = None,
) -> tuple[Any, TuningRecord]:
    """Carve validation from `dataset`, tune `model_name` on it, refit the best on all of it.

    `params` are fixed (the search covers the rest of the model's `search_space`); the first
    trial scores them with the model's defaults for the rest, which is the `default_value` the
    record compares against. `trials` caps the number of trials (the default trial included;
    `DEFAULT_TRIALS` when neither it nor `budget_s` is given); `budget_s` stops the search after
    that many seconds instead. `progress` is called after every trial. Returns the refitted model
    and the record.
    """
    check_tuning_options(protocol, trials, budget_s)
    start = time.perf_counter()
    cls = get_model_class(model_name)
    fixed = dict(params or {})
    cls(fixed)  # validate the fixed parameters before any work
    chosen = choose_protocol(dataset, protocol)
    carve_params = _protocol_params(chosen, seed)
    carving = validation_split(dataset, chosen, **carve_params)
    sub, val = carving.train, carving.test
    if val.n_interactions == 0:
        raise DataError(
            f"the {chosen} validation carving of these interactions is empty (too few "
            "interactions per user or over time to hold any out); fit without --tune"
        )
    implied = implied_params(model_name, chosen, fixed)
    base = {**implied, **fixed}
    space = {k: v for k, v in cls.search_space.items() if not _is_fixed(k, base)}
    n_trials = trials if trials is not None else (_BUDGET_TRIAL_CAP if budget_s else DEFAULT_TRIALS)
    social = bool(len(dataset.social))
    seeds = [
        s
        for s in getattr(cls, "search_seeds", ())
        if social or not any("oon" in k for k in s)  # out-of-network knobs need a network
    ]
    tuned = tune_model(
        model_name,
        sub,
        val,
        base_params=base,
        space=space,
        n_trials=n_trials,
        timeout_s=budget_s,
        metric=_METRIC,
        seed=seed,
        on_trial=progress,
        prefer=DISCOVERY_METRIC if social else None,
        seeds=seeds,
    )
    tune_seconds = time.perf_counter() - start
    t0 = time.perf_counter()
    model = cls(tuned.best_params).fit(dataset)
    refit_seconds = time.perf_counter() - t0
    record = TuningRecord(
        model=model_name,
        protocol=chosen,
        protocol_params={k: v for k, v in carving.params.items() if not k.startswith("n_")},
        metric=tuned.metric,
        trials=len(tuned.trials),
        requested_trials=trials if trials is not None else (None if budget_s else n_trials),
        budget_s=budget_s,
        fixed_params=fixed,
        searched=tuple(space),
        best_params=dict(tuned.best_params),
        best_value=tuned.best_value,
        default_value=tuned.trials[0].value,
        failed_trials=sum(1 for t in tuned.trials if t.error),
        validation={
            "train_interactions": sub.n_interactions,
            "validation_interactions": val.n_interactions,
            "validation_users": len(set(val.interactions.user.tolist())),
        },
        tune_seconds=tune_seconds,
        refit_seconds=refit_seconds,
        seconds=time.perf_counter() - start,
        seed=seed,
        trial_values=tuple(t.value for t in tuned.trials),
        implied_params=implied,
        prefer=tuned.prefer,
        chosen_among=tuned.chosen_among,
    )
    return model, record


def save_tuned(
    model: Any,
    record: TuningRecord,
    directory: str | Path,
    *,
    sections: Mapping[str, Any] | None = None,
) -> Path:
    """Save `model` to `directory` with `record` as the manifest's `tuning` entry, and any
    further `sections` (e.g. `lists`), in one atomic write."""
    return Path(model.save(directory, sections={"tuning": record.to_dict(), **(sections or {})}))
