"""Gated retraining: fit a candidate on a window of the store, judge it against the active model
on the freshest data, and promote it only if it is not worse.

The rule, step by step (`retrain`, what `serendip retrain` and `serendip schedule` run):
1. **Window.** The store's events of the last `window_days` before the newest event (all events
   when None) become a `Dataset` (`Store.to_dataset`).
2. **Holdout.** A temporal cut holds out the newest `holdout_fraction` of the window's events
   (`temporal_split`: test users must have history before the cut; pairs already seen before
   it are dropped). The candidate is fitted on what precedes the cut.
3. **Judging.** Both models recommend the top `k` for every holdout user (full ranking over the
   catalog, seen items excluded) and are scored with the project's metrics
   (`serendip.evaluation.evaluate_recommendations`); the gate metric is `metric` (NDCG@10).
   The active model is judged *as it serves* (its artifact) when its lineage says its data ended
   at or before the cut; otherwise it may have seen the holdout, so its recipe (model name and
   parameters from its artifact) is refitted on the same pre-cut data and judged like the
   candidate. The lineage records which.
4. **Gate.** The candidate passes when `candidate >= active * (1 - tolerance)` (a relative
   tolerance: 0.01 accepts a candidate up to 1% worse, so that noise does not block
   retraining). With no active model the candidate passes.
5. **Promotion.** A passing candidate is **refitted on the whole window** (the holdout is the
   freshest signal, and the served model should learn from it), saved under `artifacts_dir`,
   registered with its lineage and activated; a running server's watcher swaps it in. A refused
   candidate changes nothing (with `register_refused`, it is registered, never activated, with
   its lineage saying why).

Lineage (the registry's `lineage` column): data window, holdout, model and parameters, both
models' metrics, the gate's decision and reason, code version (package version + git commit),
parent (the version active before), and where the candidate came from.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError, SerendipError
from serendip.evaluation.evaluate import evaluate_recommendations
from serendip.evaluation.splits import Split, temporal_split
from serendip.jsonsafe import jsonable
from serendip.models.base import ModelConfig, Recommender
from serendip.models.registry import MODELS, create_model
from serendip.store import ModelVersion, Store

__all__ = [
    "Candidate",
    "GateResult",
    "RetrainReport",
    "active_recipe",
    "candidate_like_active",
    "code_version",
    "fit_candidate",
    "gate_passes",
    "retrain",
]

log = logging.getLogger("serendip.operations")

Model = Recommender[ModelConfig]
#: fits a model on a dataset (the candidate's recipe)
Fit = Callable[[Dataset], Model]

DEFAULT_METRIC = "ndcg@10"


def code_version() -> str:
    """serendip.__version__, plus "+g<commit>" when git can tell (the study's code version)."""
    from serendip.evaluation.study.runner import code_version as study_code_version

    return study_code_version()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model recipe to judge: its zoo name, a fit function, and where it came from."""

    name: str
    fit: Fit
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = "retrain"
    #: extra lineage (e.g. the study row it was chosen from)
    origin: Mapping[str, Any] = field(default_factory=dict)
    #: further manifest sections of the registered artifact (e.g. the study's `tuning`)
    sections: Mapping[str, Any] = field(default_factory=dict)


def fit_candidate(name: str, params: Mapping[str, Any] | None = None) -> Candidate:
    """The candidate `name` of the zoo with `params` (ConfigError for an unknown model or bad
    parameters, before any data is read)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; valid: {', '.join(MODELS)}")
    fixed = dict(params or {})
    create_model(name, fixed)  # validate the parameters now

    def fit(ds: Dataset) -> Model:
        model: Model = create_model(name, fixed).fit(ds)
        return model

    return Candidate(name, fit, fixed)


def active_recipe(version: ModelVersion) -> tuple[str, dict[str, Any]]:
    """The model name and parameters of a registered artifact (its manifest)."""
    path = Path(version.path) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SerendipError(
            f"model version {version.version}: cannot read its manifest {path}: {exc}"
        ) from None
    return str(manifest["model"]), dict(manifest.get("config") or {})


def candidate_like_active(store: Store) -> Candidate:
    """The active version's recipe (name and parameters) as the candidate: what a scheduled
    retrain refits on fresh data. ConfigError when no version is active."""
    active = store.models.active()
    if active is None:
        raise ConfigError("no model version is active: name the model to fit with --model")
    name, params = active_recipe(active)
    return fit_candidate(name, params)


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reason: str
    candidate: float
    active: float | None


def gate_passes(
    candidate: float, active: float | None, tolerance: float, metric: str
) -> GateResult:
    """`candidate >= active * (1 - tolerance)`; always passes without an active model."""
    if active is None:
        return GateResult(True, "no active model to compare with", candidate, None)
    floor = active * (1.0 - tolerance)
    if candidate >= floor:
        change = "better" if candidate > active else "not worse beyond the tolerance"
        return GateResult(
            True,
            f"candidate {metric} {candidate:.4f} vs active {active:.4f}: {change} "
            f"(floor {floor:.4f} at tolerance {tolerance:g})",
            candidate,
            active,
        )
    return GateResult(
        False,
        f"candidate {metric} {candidate:.4f} is below the active model's {active:.4f} beyond "
        f"the tolerance {tolerance:g} (floor {floor:.4f})",
        candidate,
        active,
    )


@dataclass(frozen=True, slots=True)
class RetrainReport:
    """What one retraining did. `version`: the registered candidate (None when refused and not
    registered); `active`: the version serving after it."""

    promoted: bool
    reason: str
    metric: str
    candidate_metrics: dict[str, float]
    active_metrics: dict[str, float] | None
    version: ModelVersion | None
    active: str | None
    lineage: dict[str, Any]
    seconds: float


def _metrics(model: Model, split: Split, k: int) -> dict[str, float]:
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    recs = model.recommend(users, k)
    result = evaluate_recommendations(recs, split.train, split.test, k=[k])
    keep = ("ndcg", "recall", "precision", "map", "mrr", "hit_rate", "catalog_coverage")
    return {
        name: float(v)
        for name, v in result.metrics.items()
        if name.partition("@")[0] in keep and np.isfinite(v)
    }


def _window(store: Store, window_days: float | None) -> tuple[Dataset, float | None, float]:
    newest = store.events.newest_timestamp()
    if newest is None:
        raise DataError("the store holds no events: nothing to retrain on")
    since = None if window_days is None else newest - window_days * 86_400.0
    return store.to_dataset(since=since, name="store-window"), since, newest


def _active_window_end(active: ModelVersion) -> float | None:
    window = active.lineage.get("data_window")
    if isinstance(window, Mapping) and isinstance(window.get("end"), (int, float)):
        return float(window["end"])
    return None


def _judge_active(
    active: ModelVersion, split: Split, cut: float, k: int
) -> tuple[dict[str, float], str, dict[str, Any]]:
    """The active model's metrics on the holdout, how it was judged, and its recipe."""
    name, params = active_recipe(active)
    recipe = {"model": name, "params": params}
    end = _active_window_end(active)
    if end is not None and end <= cut:
        model = Recommender.load(active.path)
        return (
            _metrics(model, split, k),
            "artifact as served (its data ends before the cut)",
            recipe,
        )
    refit: Model = create_model(name, params).fit(split.train)
    how = (
        "recipe refitted on the pre-cut data (its artifact may have seen the holdout: "
        + ("data window unknown" if end is None else "its data ends after the cut")
        + ")"
    )
    return _metrics(refit, split, k), how, recipe


def retrain(
    store: Store,
    artifacts_dir: str | Path,
    candidate: Candidate,
    *,
    window_days: float | None = None,
    tolerance: float = 0.01,
    holdout_fraction: float = 0.2,
    k: int = 10,
    metric: str = DEFAULT_METRIC,
    register_refused: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RetrainReport:
    """Run the gate (see the module docstring) for `candidate` on `store`'s data."""
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
    if window_days is not None and not window_days > 0:
        raise ConfigError(f"window must be a positive number of days, got {window_days}")
    if f"@{k}" not in metric:
        raise ConfigError(f"gate metric {metric} must be at the cutoff k={k}")
    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    say("reading the training window from the store")
    dataset, since, newest = _window(store, window_days)
    split = temporal_split(dataset, test_fraction=holdout_fraction)
    cut = float(split.params["cut"])
    if split.test.n_interactions == 0:
        raise DataError(
            f"the newest {holdout_fraction:.0%} of the window holds no event of a user with "
            "earlier history: nothing to judge the candidate on (widen the window)"
        )
    say(f"fitting the candidate '{candidate.name}' on the events before the holdout")
    fitted = candidate.fit(split.train)
    cand_metrics = _metrics(fitted, split, k)
    if metric not in cand_metrics:
        raise ConfigError(f"unknown gate metric {metric}; valid: {', '.join(cand_metrics)}")
    active = store.models.active()
    active_metrics: dict[str, float] | None = None
    judged = None
    recipe: dict[str, Any] | None = None
    if active is not None:
        say(f"judging the active model {active.version} ({active.name}) on the same holdout")
        try:
            active_metrics, judged, recipe = _judge_active(active, split, cut, k)
        except (SerendipError, OSError) as exc:
            raise SerendipError(
                f"the active model {active.version} could not be judged: {exc}"
            ) from exc
    gate = gate_passes(
        cand_metrics[metric],
        None if active_metrics is None else active_metrics[metric],
        tolerance,
        metric,
    )
    lineage: dict[str, Any] = {
        "source": candidate.source,
        "model": candidate.name,
        "params": jsonable(fitted.get_params()),
        "data_window": {
            "start": since,
            "end": newest,
            "days": window_days,
            "events": dataset.n_interactions,
            "users": len(dataset.users),
            "items": len(dataset.items),
        },
        "holdout": {
            "cut": cut,
            "fraction": holdout_fraction,
            "train_events": split.train.n_interactions,
            "test_events": split.test.n_interactions,
            "test_users": int(np.unique(split.test.interactions.user).size),
        },
        "metrics": {"candidate": cand_metrics, "active": active_metrics},
        "gate": {
            "metric": metric,
            "k": k,
            "tolerance": tolerance,
            "rule": "candidate >= active * (1 - tolerance) on the freshest temporal holdout",
            "passed": gate.passed,
            "reason": gate.reason,
            "active_judged": judged,
            "active_recipe": recipe,
        },
        "refit": (
            "the registered artifact was refitted on the whole window after passing the gate"
            if gate.passed
            else "refused: the artifact is the candidate fitted on the pre-cut data"
        ),
        "code_version": code_version(),
        "parent": None if active is None else active.version,
        **({"origin": jsonable(dict(candidate.origin))} if candidate.origin else {}),
    }
    version: ModelVersion | None = None
    now_active = None if active is None else active.version
    if gate.passed:
        say(f"gate passed; refitting '{candidate.name}' on the whole window")
        final = candidate.fit(dataset)
        version = _register(store, artifacts_dir, candidate, final, cand_metrics, lineage)
        store.models.activate(version.version)
        now_active = version.version
        version = store.models.get(version.version) or version
        log.info("retrain: %s (%s) promoted: %s", version.version, candidate.name, gate.reason)
    else:
        if register_refused:
            version = _register(store, artifacts_dir, candidate, fitted, cand_metrics, lineage)
        log.info("retrain: candidate '%s' refused: %s", candidate.name, gate.reason)
    return RetrainReport(
        promoted=gate.passed,
        reason=gate.reason,
        metric=metric,
        candidate_metrics=cand_metrics,
        active_metrics=active_metrics,
        version=version,
        active=now_active,
        lineage=lineage,
        seconds=time.perf_counter() - start,
    )


def _register(
    store: Store,
    artifacts_dir: str | Path,
    candidate: Candidate,
    model: Model,
    metrics: Mapping[str, float],
    lineage: Mapping[str, Any],
) -> ModelVersion:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    directory = Path(artifacts_dir) / f"{candidate.name}-{stamp}-{uuid.uuid4().hex[:6]}"
    sections = {"lineage": jsonable(dict(lineage)), **jsonable(dict(candidate.sections))}
    model.save(directory, sections=sections)
    return store.models.register(
        candidate.name,
        str(directory.resolve()),
        {f"holdout_{k}": v for k, v in metrics.items()},
        lineage=jsonable(dict(lineage)),
    )
