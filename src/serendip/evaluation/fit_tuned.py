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

The pipeline is tuned in two stages, retrieval first (`tune_collaborative`): each zoo model of
`pipeline.config.COLLABORATIVE_CANDIDATES` is tuned alone on the carving, and the best becomes
the collaborative source the pipeline's own search then starts from (unless the user fixed it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError
from serendip.evaluation.splits import validation_split
from serendip.evaluation.tuning import TrialRecord, searchable, tune_model
from serendip.models.base import Choice, SearchSpace
from serendip.models.registry import get_model_class

__all__ = [
    "DEFAULT_TRIALS",
    "TUNE_PROTOCOLS",
    "SourceChoice",
    "TuningRecord",
    "check_tuning_options",
    "choose_protocol",
    "implied_params",
    "save_tuned",
    "tune_and_fit",
    "tune_collaborative",
]

#: Validation carvings `tune_and_fit` offers (the study's protocols a plain fit can judge by).
TUNE_PROTOCOLS: tuple[str, ...] = ("temporal", "leave-last", "random")
#: Trials when neither a trial count nor a time budget is given.
DEFAULT_TRIALS = 20
#: Trial cap under a time budget alone (the budget is what stops the search).
_BUDGET_TRIAL_CAP = 100_000
_METRIC = "ndcg@10"
#: The source stage's share of a time budget (the pipeline's search gets the rest) and its
#: trials per candidate under a trial count (at most the count itself).
SOURCE_BUDGET_SHARE = 0.25
SOURCE_TRIALS = 10


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
class SourceChoice:
    """The source stage of a pipeline's `fit --tune`: every candidate's best validation score
    and parameters (or why it dropped out), and the one chosen."""

    chosen: str
    params: dict[str, Any]
    candidates: dict[str, dict[str, Any]]
    seconds: float

    @property
    def is_default(self) -> bool:
        """Whether the chosen source is the pipeline's default one (its model, default params)."""
        from serendip.pipeline.sources.collaborative import CollaborativeConfig

        return self.chosen == CollaborativeConfig().model and not self.params

    @property
    def source_params(self) -> dict[str, Any]:
        """The collaborative source's constructor parameters (`sources.collaborative.params`)."""
        return {"model": self.chosen, "params": dict(self.params)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "params": self.params,
            "is_default": self.is_default,
            "candidates": self.candidates,
            "seconds": round(self.seconds, 3),
        }


def tune_collaborative(
    sub: Dataset,
    val: Dataset,
    candidates: Mapping[str, Mapping[str, Any]],
    *,
    trials: int | None,
    budget_s: float | None,
    seed: int = 0,
    prefer: str | None = None,
    progress: Callable[[TrialRecord], None] | None = None,
) -> SourceChoice | None:
    """Tune each of `candidates` ({zoo model name: parameters fixed for this stage only}) alone
    on (sub, val) and choose the best by validation NDCG@10. `trials` trials each, or
    `budget_s` split evenly between them. A candidate whose every trial fails (e.g. EASE
    refusing a catalog beyond `max_items`) drops out. The chosen parameters leave out the
    stage's fixed ones. None when every candidate drops out."""
    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    best: tuple[float, str, dict[str, Any]] | None = None
    per_candidate_s = None if budget_s is None else budget_s / max(len(candidates), 1)
    for name, fixed in candidates.items():

        def report(rec: TrialRecord, name: str = name) -> None:
            if progress is not None:
                progress(replace(rec, stage=f"collaborative:{name}"))

        tuned = tune_model(
            name,
            sub,
            val,
            base_params=fixed,
            n_trials=trials if trials is not None else _BUDGET_TRIAL_CAP,
            timeout_s=per_candidate_s,
            metric=_METRIC,
            seed=seed,
            on_trial=report,
            prefer=prefer,
        )
        if not math.isfinite(tuned.best_value):
            errors = [t.error for t in tuned.trials if t.error]
            results[name] = {"validation": None, "error": errors[0] if errors else "no score"}
            continue
        params = {k: v for k, v in tuned.best_params.items() if k not in fixed}
        results[name] = {
            "validation": tuned.best_value,
            "params": params,
            "trials": len(tuned.trials),
        }
        if best is None or tuned.best_value > best[0]:
            best = (tuned.best_value, name, params)
    if best is None:
        return None
    return SourceChoice(best[1], best[2], results, time.perf_counter() - start)


_SOURCE_KEY = "sources.collaborative.params"


_SERVE_KEY = "fallback.serve"
#: Re-ranking knobs at their neutral values: the served order is kept as it comes
_PURE_RELEVANCE: dict[str, Any] = {"rerank.mmr_lambda": 1.0, "rerank.author_cap": None}


def _start_from_source(
    source: SourceChoice,
    base: Mapping[str, Any],
    space: SearchSpace,
    seeds: Sequence[Mapping[str, Any]],
) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """The pipeline's search space and seeds after the source stage. Two dimensions join the
    space: the collaborative source (the default or the stage's best, when they differ: the
    best model alone is not always the best source under the ranker) and `fallback.serve`
    (the ranker, or the collaborative source's own order for users with a history: never below
    the best single model on the user's validation). The search starts from the best source:
    it under the ranker, then served alone at pure relevance (no diversity or author cap: the
    model's own list, which the re-ranking knobs of later trials may trade for diversity),
    then the usual seeds moved from it."""
    from serendip.pipeline.config import PipelineConfig

    moved: dict[str, Any] = {}
    if not source.is_default:
        space = {**space, _SOURCE_KEY: Choice(({}, source.source_params))}
        moved = {_SOURCE_KEY: source.source_params}
    if (
        not _is_fixed(_SERVE_KEY, base)
        and PipelineConfig.model_validate(dict(base)).fallback.enabled
    ):
        space = {**space, _SERVE_KEY: Choice((None, "collaborative"))}
    start = [moved] if moved else []
    # served alone at pure relevance: the model's own list, what "never below" compares with
    pure = {k: v for k, v in _PURE_RELEVANCE.items() if not _is_fixed(k, base)}
    start.append({**moved, _SERVE_KEY: "collaborative", **pure})
    return space, [*start, *({**moved, **s} for s in seeds)]


def _source_stage_applies(model_name: str, base: Mapping[str, Any]) -> bool:
    """Whether `fit --tune` chooses the pipeline's collaborative source: the model is the
    pipeline, the user did not fix the source, and it runs (quota above 0)."""
    if model_name != "pipeline" or _is_fixed(_SOURCE_KEY, base):
        return False
    from serendip.pipeline.config import PipelineConfig

    spec = PipelineConfig.model_validate(dict(base)).sources.get("collaborative")
    return spec is not None and spec.quota > 0


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
    #: the pipeline's collaborative source chosen before its search (`tune_collaborative`)
    source_stage: SourceChoice | None = None

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
            "collaborative_source": (
                None if self.source_stage is None else self.source_stage.to_dict()
            ),
        }


#: Where the data has a social graph, tuning breaks validation ties by out-of-network hits: the
#: setting that discovers beyond the user's network wins among equally accurate ones (16.4),
#: where it discovers more beyond the noise of the comparison (`tuning.choose_trial`).
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
    space: SearchSpace = {
        k: v for k, v in searchable(cls.search_space, dataset).items() if not _is_fixed(k, base)
    }
    n_trials = trials if trials is not None else (_BUDGET_TRIAL_CAP if budget_s else DEFAULT_TRIALS)
    social = bool(len(dataset.social))
    # a seed naming a dimension left out of the space (e.g. out-of-network without a social
    # graph) is skipped by `tune_model`
    seeds: list[dict[str, Any]] = [dict(s) for s in getattr(cls, "search_seeds", ())]
    source: SourceChoice | None = None
    search_budget_s = budget_s
    if _source_stage_applies(model_name, base):
        from serendip.pipeline.config import COLLABORATIVE_CANDIDATES

        source = tune_collaborative(
            sub,
            val,
            COLLABORATIVE_CANDIDATES,
            trials=None if budget_s else min(SOURCE_TRIALS, n_trials),
            budget_s=None if budget_s is None else budget_s * SOURCE_BUDGET_SHARE,
            seed=seed,
            prefer=DISCOVERY_METRIC if social else None,
            progress=progress,
        )
        if source is not None:
            space, seeds = _start_from_source(source, base, space, seeds)
        if budget_s is not None:
            search_budget_s = max(budget_s - (time.perf_counter() - start), 1.0)
    tuned = tune_model(
        model_name,
        sub,
        val,
        base_params=base,
        space=space,
        n_trials=n_trials,
        timeout_s=search_budget_s,
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
        source_stage=source,
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
