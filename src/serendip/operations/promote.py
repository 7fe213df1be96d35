"""From the study to production: the study's winner, fitted with its tuned parameters on the
store's data, sent through the retraining gate.

The study's choice rule (`study_winner`), as its leaderboard ranks models: among the rows that
finished (`status` ok) on one dataset and protocol, the highest value of the study's own metric
(its config's `metric`, NDCG@10 by default), ties broken by name. Peer libraries are left out
(they are measured, not served: they are not in the model zoo). The protocol is the one asked
for, else `temporal` when the study ran it (it judges models the way the gate does: on the
freshest data), else the first of random / leave-last the study ran; the dataset is the one
asked for, or the study's only one.

`promote_study_winner` fits the winner with the parameters its study cell was tuned to (the
row's `params`: the tuned ones when the study tuned it), registers it as a candidate version
(with the study's tuning record in its manifest and the study row in its lineage) and sends it
through `retrain`'s gate: it serves only if it is not worse than the active model on the freshest
holdout of the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serendip.errors import ConfigError, DataError
from serendip.evaluation.study.results import read_results
from serendip.models.registry import MODELS
from serendip.operations.retrain import Candidate, RetrainReport, fit_candidate, retrain
from serendip.store import Store

__all__ = ["StudyWinner", "promote_study_winner", "study_winner"]

#: Protocols a winner may be taken from, in order of preference when none is named.
_PREFERRED = ("temporal", "random", "leave-last")


@dataclass(frozen=True, slots=True)
class StudyWinner:
    dataset: str
    protocol: str
    model: str
    metric: str
    value: float
    params: dict[str, Any]
    tuning: dict[str, Any]
    runner_up: tuple[str, float] | None
    study_dir: str
    code_version: str


def _value(row: Mapping[str, Any], metric: str) -> float | None:
    v = (row.get("metrics") or {}).get(metric)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _pick(names: Sequence[str], asked: str | None, what: str, preferred: Sequence[str]) -> str:
    if asked is not None:
        if asked not in names:
            raise ConfigError(
                f"the study has no finished {what} '{asked}'; it has: {', '.join(names) or '-'}"
            )
        return asked
    for p in preferred:
        if p in names:
            return p
    if len(names) == 1:
        return names[0]
    raise ConfigError(f"the study has several {what}s ({', '.join(names)}); name one")


def study_winner(
    study_dir: str | Path, *, dataset: str | None = None, protocol: str | None = None
) -> StudyWinner:
    """The study's winner by its choice rule (see the module docstring)."""
    out = Path(study_dir)
    if not (out / "results.json").is_file():
        raise ConfigError(f"{out}: no results.json (run `serendip study --out {out}` first)")
    try:
        results = read_results(out)
    except ValueError as exc:
        raise DataError(f"{out / 'results.json'}: not valid JSON ({exc})") from None
    study = results.get("study") or {}
    metric = str((study.get("config") or {}).get("metric") or "ndcg@10")
    rows = [
        r
        for r in results.get("rows") or []
        if r.get("status") == "ok" and r.get("kind") != "peer" and r.get("model") in MODELS
    ]
    datasets = sorted({str(r["dataset"]) for r in rows})
    chosen_ds = _pick(datasets, dataset, "dataset", ())
    protocols = sorted({str(r["protocol"]) for r in rows if r["dataset"] == chosen_ds})
    chosen_p = _pick(protocols, protocol, "protocol", _PREFERRED)
    scored = [
        (v, str(r["model"]), r)
        for r in rows
        if r["dataset"] == chosen_ds and r["protocol"] == chosen_p
        for v in [_value(r, metric)]
        if v is not None
    ]
    if not scored:
        raise DataError(f"{out}: no finished model has {metric} on {chosen_ds} / {chosen_p}")
    scored.sort(key=lambda t: (-t[0], t[1]))
    value, name, row = scored[0]
    return StudyWinner(
        dataset=chosen_ds,
        protocol=chosen_p,
        model=name,
        metric=metric,
        value=value,
        params=dict(row.get("params") or {}),
        tuning=dict(row.get("tuning") or {}),
        runner_up=(scored[1][1], scored[1][0]) if len(scored) > 1 else None,
        study_dir=str(out.resolve()),
        code_version=str(study.get("code_version") or ""),
    )


def winner_candidate(winner: StudyWinner) -> Candidate:
    """The winner as a gate candidate: its tuned parameters, the study in its lineage."""
    base = fit_candidate(winner.model, winner.params)
    origin = {
        "study": winner.study_dir,
        "dataset": winner.dataset,
        "protocol": winner.protocol,
        "metric": winner.metric,
        "study_value": winner.value,
        "runner_up": list(winner.runner_up) if winner.runner_up else None,
        "study_code_version": winner.code_version,
        "tuning": winner.tuning,
    }
    return Candidate(
        winner.model,
        base.fit,
        base.params,
        source=f"study:{winner.study_dir}",
        origin=origin,
        sections={"tuning": {"source": "study", **winner.tuning, "best_params": winner.params}},
    )


def promote_study_winner(
    store: Store,
    artifacts_dir: str | Path,
    study_dir: str | Path,
    *,
    dataset: str | None = None,
    protocol: str | None = None,
    window_days: float | None = None,
    tolerance: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> tuple[StudyWinner, RetrainReport]:
    """Pick the study's winner, fit it with its tuned parameters, register it as a candidate
    and let the gate decide whether it serves (see `retrain`)."""
    winner = study_winner(study_dir, dataset=dataset, protocol=protocol)
    report = retrain(
        store,
        artifacts_dir,
        winner_candidate(winner),
        window_days=window_days,
        tolerance=tolerance,
        register_refused=True,
        progress=progress,
    )
    return winner, report
