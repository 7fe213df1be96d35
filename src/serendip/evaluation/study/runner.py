"""The study loop: every (dataset, protocol, model) cell split, tuned, fitted, measured, cached.

Per cell: 1. split by the protocol (seeded: every model sees the same split) and carve a
validation split from train the same way; 2. `tune_model` on validation, never on test;
3. refit the best parameters on all of train (`cost.measure_fit`: time, memory); 4. recommend
top-max(K) for every test user, batched and one at a time (latency; cold users pass their
fold-in history as `context`); 5. `evaluate_recommendations`; 6. write
`OUT/cells/<dataset>/<protocol>/<model>/` result.json (+ per_user.npz, recs.csv), each file
atomically, result.json last: a cell with one is finished and skipped by a rerun (unless
`fresh`); a failing cell is recorded as "failed" and retried by the next run. At the end:
paired significance per dataset x protocol, results.json + results.csv, the HTML leaderboard.

>>> results = run_study(load_profile("quick"), Path("study-out"))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serendip.data.dataset import Dataset, SocialGraph, UserTable
from serendip.data.vocabulary import Vocabulary
from serendip.errors import ConfigError, SerendipError
from serendip.evaluation.splits import Split, split_dataset, with_validation
from serendip.evaluation.study import cost as costs
from serendip.evaluation.study.config import (
    REAL_SOURCES,
    DatasetSpec,
    ModelSpec,
    ProtocolSpec,
    StudyConfig,
    available_peers,
)
from serendip.evaluation.study.results import (
    atomic_write_bytes,
    atomic_write_text,
    jsonable,
    rows_frame,
    write_results,
)

if TYPE_CHECKING:
    from serendip.evaluation.study.peers import Peer
    from serendip.models.base import Recommender

__all__ = [
    "Cell",
    "StudyEvent",
    "StudyRunner",
    "code_version",
    "plan_cells",
    "plan_dp_cells",
    "resolve_source",
    "run_study",
    "shared_data_dir",
]

#: Per-user metrics stored in per_user.npz (for each K of the study).
PER_USER_METRICS: tuple[str, ...] = ("ndcg", "recall", "precision", "hit_rate")

#: What the DP sweep's numbers mean (results.json "dp_sweep").
DP_SWEEP_NOTE = (
    "each model refitted with the same parameters at each privacy budget: 'none' = no "
    "differential privacy, 'clip' = the per-user bound (dp_max_per_user) with negligible noise, "
    "a number = dp_epsilon (Laplace: pure epsilon-DP; Gaussian: (epsilon, dp_delta)-DP), unit "
    "of privacy one user; not tuned"
)

#: Environment variable naming the directory that holds ml-100k/ and lastfm-2k/.
SHARED_DATA_ENV = "SERENDIP_SHARED_DATA"


@dataclass(frozen=True, slots=True)
class Cell:
    """One unit of work: a model (of some kind) on one dataset split by one protocol.

    kind "dp" is a point of the differential-privacy sweep: `variant` names it ("none",
    "clip", an epsilon) and its files live under `cells/<dataset>/<protocol>/dp/`."""

    dataset: DatasetSpec
    protocol: ProtocolSpec
    model: ModelSpec
    kind: str  # "model" | "peer" | "pipeline" | "dp"
    variant: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        name = f"{self.model.name}@dp-{self.variant}" if self.variant else self.model.name
        return (self.dataset.name, self.protocol.name, name)

    @property
    def label(self) -> str:
        return "/".join(self.key)

    def directory(self, out: Path) -> Path:
        base = out / "cells" / self.dataset.name / self.protocol.name
        if self.variant:
            return base / "dp" / f"{self.model.name}-eps-{self.variant}"
        return base / self.model.name


@dataclass(frozen=True, slots=True)
class StudyEvent:
    """What a progress display needs: `kind` is "start" (a study of `total` cells, `done`
    already finished), "cell" (`cell` begins), "done" (`cell` finished with `row`), "note"."""

    kind: str
    done: int
    total: int
    cell: Cell | None = None
    row: Mapping[str, Any] | None = None
    message: str = ""


def code_version() -> str:
    """Package version, plus "+g<short sha>" of the source checkout when git can tell."""
    from serendip import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}" if sha else __version__


# --------------------------------------------------------------------------- planning
def plan_cells(config: StudyConfig) -> tuple[list[Cell], list[str]]:
    """Every cell of the study in run order, and notes on what is left out (and why)."""
    notes: list[str] = []
    specs: list[tuple[ModelSpec, str]] = [(m, "model") for m in config.models]
    specs += [(p, "peer") for p in config.peers]
    with_pipeline = False
    if config.pipeline.enabled:
        from serendip.models.registry import MODELS

        with_pipeline = "pipeline" in MODELS
        if not with_pipeline:
            notes.append("pipeline skipped: no model named 'pipeline' is registered yet")
    cells = []
    for d in config.datasets:
        for p in d.protocols:
            cells += [Cell(d, p, m, kind) for m, kind in specs]
            if with_pipeline:  # its parameters may depend on the protocol
                cells.append(Cell(d, p, config.pipeline.spec_for(p.name), "pipeline"))
    return cells, notes


def plan_dp_cells(config: StudyConfig) -> list[Cell]:
    """The cells of the differential-privacy sweep (empty when `config.dp` is disabled): per
    dataset x sweep protocol x dp model, one cell per point of `DPSweepSpec.points`."""
    cells = []
    for d in config.datasets:
        for p in config.dp_protocols(d):
            for spec in config.dp.models:
                for label, epsilon in config.dp.points():
                    params = dict(spec.params)
                    if epsilon is not None:
                        params["dp_epsilon"] = epsilon
                    model = ModelSpec(name=spec.name, params=params)
                    cells.append(Cell(d, p, model, "dp", variant=label))
    return cells


def resolve_source(
    source: str, *, cache_dir: Path, seed: int, shared_data: Path | None = None
) -> Path:
    """Directory or file of a dataset source (generating a synthetic one into `cache_dir`).

    "ml-100k"/"lastfm-2k" are looked up under `shared_data` (default: $SERENDIP_SHARED_DATA,
    else ../shared/data next to the working directory's repository). A synthetic preset is
    generated once per seed; a complete earlier generation (its manifest.json) is reused.
    """
    if source.startswith("synthetic:"):
        from serendip.data.synthetic import generate_platform

        preset = source.split(":", 1)[1]
        target = cache_dir / f"synthetic-{preset}-seed{seed}"
        if not (target / "manifest.json").is_file():
            generate_platform(preset, seed=seed, out=target)
        return target
    if source in REAL_SOURCES:
        path = (shared_data or shared_data_dir()) / source
        if not path.is_dir():
            raise ConfigError(
                f"dataset '{source}' not found at {path}; set {SHARED_DATA_ENV} to the directory "
                f"holding {', '.join(REAL_SOURCES)}"
            )
        return path
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"dataset source '{source}' is neither a known name nor an existing path")
    return path


def shared_data_dir() -> Path:
    """The directory holding the real datasets (ml-100k/, lastfm-2k/): $SERENDIP_SHARED_DATA,
    else the checkout's sibling ../shared/data (or the working directory's). The study and the
    benchmarks look real datasets up here, so both find the same copy."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    # The checkout's sibling ../shared/data (src/serendip/evaluation/study -> repo root).
    repo = Path(__file__).resolve().parents[4]
    candidates = [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


# --------------------------------------------------------------------------- helpers
def _without_users(ds: Dataset, drop: np.ndarray) -> Dataset:
    """`ds` with the users of index array `drop` removed from its user vocabulary (and from the
    user metadata and the social graph). `drop` users must have no interactions in `ds`.

    Used for the cold-users protocol: a model fitted on this does not know the held-out users,
    so `recommend` sends them down its cold-start path with their fold-in history as context.
    """
    keep = np.ones(ds.n_users, dtype=bool)
    keep[drop] = False
    remap = np.full(ds.n_users, -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    it = ds.interactions
    if (remap[it.user] < 0).any():  # pragma: no cover - guarded by the caller
        raise SerendipError("cannot forget users that still have interactions")
    um = ds.user_meta
    users = UserTable(
        um.created_at[keep],
        um.interests[keep],
        um.private[keep],
        {k: v[keep] for k, v in um.attributes.items()},
    )
    s = ds.social
    edge = keep[s.follower] & keep[s.followee] if len(s) else np.zeros(0, dtype=bool)
    social = SocialGraph(
        remap[s.follower[edge]].astype(np.int32),
        remap[s.followee[edge]].astype(np.int32),
        s.created_at[edge],
    )
    interactions = replace(it, user=remap[it.user].astype(np.int32))
    return replace(
        ds,
        users=Vocabulary.from_unique(ds.users.ids[keep]),
        interactions=interactions,
        user_meta=users,
        social=social,
        _cache={},
    )


def _history(ds: Dataset) -> dict[str, list[str]]:
    """External item IDs per user of `ds` (the fold-in context of cold users)."""
    it = ds.interactions
    users = ds.users.lookup(it.user)
    items = ds.items.lookup(it.item)
    out: dict[str, dict[str, None]] = {}
    for u, i in zip(users, items, strict=True):
        out.setdefault(str(u), {})[str(i)] = None  # ordered set: first occurrence wins
    return {u: list(v) for u, v in out.items()}


def _test_users(split: Split) -> np.ndarray:
    """External IDs of the users with test interactions (in vocabulary order)."""
    return split.test.users.lookup(np.unique(split.test.interactions.user))


@dataclass
class _Prepared:
    """A split ready for the cells of one dataset x protocol."""

    split: Split
    fit_train: Dataset  # what models are fitted on (cold-users: without the held-out users)
    tune_train: Dataset
    tune_validation: Dataset
    tune_scheme: str
    context: dict[str, list[str]] | None
    users: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the runner
class StudyRunner:
    """Runs a `StudyConfig` into `out`; see the module docstring.

    on_event: called with a `StudyEvent` as the study advances (the CLI's progress bar).
    fresh: recompute finished cells instead of reusing them.
    shared_data: where ml-100k/ and lastfm-2k/ live (default: see `resolve_source`).
    sources: dataset name -> an already available directory or file, overriding the config's
    source (the demo passes the platform it just generated).
    datasets: dataset name -> an already loaded `Dataset`, overriding the config's source.
    leaderboard: write the HTML leaderboard at the end.
    """

    def __init__(
        self,
        config: StudyConfig,
        out: Path,
        *,
        fresh: bool = False,
        on_event: Callable[[StudyEvent], None] | None = None,
        shared_data: Path | None = None,
        sources: Mapping[str, Path] | None = None,
        datasets: Mapping[str, Dataset] | None = None,
        leaderboard: bool = True,
    ) -> None:
        self.config = config
        self.write_leaderboard = leaderboard
        self.leaderboard_path: Path | None = None
        self.out = Path(out)
        self.fresh = fresh
        self.on_event = on_event or (lambda event: None)
        self.shared_data = shared_data
        self.sources = dict(sources or {})
        self.version = code_version()
        self.notes: list[str] = []
        self._datasets: dict[str, Dataset] = dict(datasets or {})
        self._splits: dict[tuple[str, str], _Prepared] = {}

    # ------------------------------------------------------------- public
    def run(self) -> dict[str, Any]:
        """Run every unfinished cell, then write results (and the leaderboard); returns the
        results dict (the content of results.json)."""
        start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        main_cells, notes = plan_cells(self.config)
        cells = main_cells + plan_dp_cells(self.config)
        self.notes.extend(notes)
        for note in notes:
            self._emit("note", 0, len(cells), message=note)
        by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
        todo: list[Cell] = []
        for cell in cells:
            row = None if self.fresh else self._finished(cell)
            if row is not None:
                by_key[cell.key] = row
            else:
                todo.append(cell)
        done = len(by_key)
        self._emit("start", done, len(cells))
        for cell in todo:
            self._emit("cell", done, len(cells), cell=cell)
            row = self._run_cell(cell)
            by_key[cell.key] = row
            done += 1
            self._emit("done", done, len(cells), cell=cell, row=row)
        rows = [by_key[c.key] for c in main_cells]
        dp_rows = [by_key[c.key] for c in cells[len(main_cells) :]]
        significance = self._significance(rows)
        study: dict[str, Any] = {
            "profile": self.config.profile,
            "config": self.config.model_dump(mode="json"),
            "code_version": self.version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - start,  # this run (reused cells cost nothing)
            "notes": list(self.notes),
            "cost_measures": costs.COST_NOTES,
            "cells": len(cells),
            "cells_reused": len(cells) - len(todo),
            "failed": sum(r["status"] != "ok" for r in rows),
        }
        results: dict[str, Any] = {"study": study, "rows": rows, "significance": significance}
        if self.config.dp.enabled:
            results["dp_sweep"] = {
                "settings": self.config.dp.model_dump(mode="json"),
                "note": DP_SWEEP_NOTE,
                "rows": dp_rows,
            }
            atomic_write_text(self.out / "dp_sweep.csv", rows_frame(dp_rows).to_csv(index=False))
        write_results(results, self.out)
        if self.write_leaderboard:
            self._leaderboard(results)
        return results

    # ------------------------------------------------------------- cells
    def _emit(self, kind: str, done: int, total: int, **kw: Any) -> None:
        self.on_event(StudyEvent(kind, done, total, **kw))

    def _finished(self, cell: Cell) -> dict[str, Any] | None:
        path = cell.directory(self.out) / "result.json"
        if not path.is_file():
            return None
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return row if row.get("status") == "ok" else None

    def _base_row(self, cell: Cell) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if cell.kind == "dp":
            extra["dp"] = {
                "point": cell.variant,
                "epsilon": cell.model.params.get("dp_epsilon"),
                "release": None,
            }
        return {
            **extra,
            "dataset": cell.dataset.name,
            "protocol": cell.protocol.name,
            "model": cell.model.name,
            "kind": cell.kind,
            "family": self._family(cell),
            "status": "failed",
            "error": "",
            "params": {},
            "tuning": {},
            "metrics": {},
            "slices": {},
            "cost": {},
            "n_test_users": 0,
            "seed": self.config.seed,
            "code_version": self.version,
        }

    def _family(self, cell: Cell) -> str:
        if cell.kind == "peer":
            return "peer"
        from serendip.models.registry import MODELS

        entry = MODELS.get(cell.model.name)
        return entry.family if entry else cell.kind

    def _run_cell(self, cell: Cell) -> dict[str, Any]:
        row = self._base_row(cell)
        directory = cell.directory(self.out)
        start = time.perf_counter()
        try:
            row.update(self._compute(cell, directory))
            row["status"] = "ok"
        except Exception as exc:  # SerendipError or anything a model raises
            row["status"] = "failed"
            row["error"] = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, SerendipError) else str(exc)
            )
            if not isinstance(exc, SerendipError):
                row["traceback"] = traceback.format_exc(limit=8)
            for stale in ("recs.csv", "per_user.npz"):  # from an earlier run of this cell
                (directory / stale).unlink(missing_ok=True)
        # the whole cell (tuning, refit, recommend, evaluate, cost probes): what a study costs
        row["cell_seconds"] = time.perf_counter() - start
        atomic_write_text(directory / "result.json", json.dumps(jsonable(row), indent=2) + "\n")
        return row

    def _model_class(self, cell: Cell) -> type[Recommender] | type[Peer]:
        """A model of the zoo or a peer: the same shape where the study touches them (config
        mapping in, `fit` returning the fitted one, `recommend`, `save`, `get_params`)."""
        if cell.kind == "peer":
            peers = available_peers()
            if cell.model.name not in peers:
                raise ConfigError(f"peer '{cell.model.name}' is not available")
            return peers[cell.model.name]
        from serendip.models.registry import get_model_class

        return get_model_class(cell.model.name)

    def _tuned_collaborative_source(
        self, cell: Cell, base: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """The pipeline's collaborative source takes the parameters the study tuned for that
        model on the same dataset and protocol (its cell ran first, on the same validation
        split), unless the pipeline's config sets them: the pipeline is then judged with the
        same tuning budget as the model it builds on, not with that model's class defaults."""
        from serendip.pipeline.config import PipelineConfig

        spec = PipelineConfig.model_validate(base).sources.get("collaborative")
        if spec is None or spec.quota <= 0 or spec.params.get("params"):
            return base, None
        model = str(spec.params.get("model", "ials"))
        twin = Cell(cell.dataset, cell.protocol, ModelSpec(name=model), "model")
        row = self._finished(twin)
        if row is None or not row.get("tuning", {}).get("trials"):
            return base, None
        params = {**base, "sources.collaborative.params": {"model": model, "params": row["params"]}}
        return params, f"collaborative source: {model} with the parameters tuned in its own cell"

    def _compute(self, cell: Cell, directory: Path) -> dict[str, Any]:
        from serendip.evaluation.evaluate import evaluate_recommendations

        cfg = self.config
        prep = self._prepare(cell.dataset, cell.protocol)
        cls = self._model_class(cell)
        base: dict[str, Any] = {}
        if cfg.quick:
            base.update(dict(cls.quick_params))
        base.update(cell.model.params)
        notes: list[str] = []
        if cell.kind == "pipeline":
            base, note = self._tuned_collaborative_source(cell, base)
            notes += [note] if note else []

        tuning: dict[str, Any] = {"trials": 0, "seconds": 0.0, "metric": cfg.metric}
        if cell.kind == "peer":
            tuning["note"] = "peers run with the library's own defaults (used raw)"
        params = dict(base)
        if cell.model.trials > 1 and cell.kind != "peer" and cls.search_space:
            from serendip.evaluation.tuning import tune_model

            t0 = time.perf_counter()
            cut = int(cfg.metric.partition("@")[2])
            tuned = tune_model(
                cell.model.name,
                prep.tune_train,
                prep.tune_validation,
                base_params=base,
                n_trials=cell.model.trials,
                timeout_s=cell.model.timeout_s,
                k=cut,
                metric=cfg.metric,
                seed=cfg.seed,
                # a social graph: validation ties go to out-of-network discovery (issue 16.4)
                prefer=f"oon_hit_rate@{cut}" if len(prep.tune_train.social) else None,
            )
            params = dict(tuned.best_params)
            tuning = {
                "trials": len(tuned.trials),
                "seconds": time.perf_counter() - t0,
                "metric": cfg.metric,
                "best_validation": tuned.best_value,
                "validation": prep.tune_scheme,
                "failed_trials": sum(1 for t in tuned.trials if t.error),
                "ties_decided_by": tuned.prefer,
                "tied_trials": tuned.chosen_among,
            }

        model, fit_cost = costs.measure_fit(lambda: cls(params).fit(prep.fit_train))
        kmax = max(cfg.k)
        context = prep.context
        if context and "context" not in inspect.signature(model.recommend).parameters:
            context = None
            notes.append(
                "no cold-start path: recommend takes no fold-in context, so held-out users "
                "get what the model gives unknown users"
            )
        recs, latency = costs.measure_latency(
            model.recommend,
            prep.users,
            kmax,
            context=context,
            sample=cfg.latency_users,
            seed=cfg.seed,
        )
        size: float | None
        try:
            size = costs.model_size_mb(model.save)
        except Exception as exc:  # a model that cannot be saved still has its other numbers
            size = None
            notes.append(f"model size unknown: save failed ({type(exc).__name__}: {exc})")
        result = evaluate_recommendations(
            recs,
            prep.split.train,
            prep.split.test,
            k=list(cfg.k),
            fold_in=prep.split.fold_in,
            keep_per_user=True,
        )
        self._write_cell_files(directory, recs, result)
        used = model.get_params()
        audit = self._audit(recs, prep, notes)
        extra: dict[str, Any] = {}
        if cell.kind == "dp":
            extra["dp"] = {
                "point": cell.variant,
                "epsilon": used.get("dp_epsilon"),
                "release": getattr(model, "dp_release_", None),
            }
        return {
            **extra,
            "audit": audit,
            "params": used,
            "tuning": tuning,
            "metrics": dict(result.metrics),
            "slices": {s: dict(v) for s, v in result.slices.items()},
            "slice_sizes": dict(result.slice_sizes),
            "cost": {
                "fit_seconds": fit_cost.seconds,
                "peak_memory_mb": fit_cost.peak_memory_mb,
                "model_size_mb": size,
                "recommend_batch_ms_per_user": latency.batch_ms_per_user,
                "recommend_single_p50_ms": latency.single_p50_ms,
                "recommend_single_p99_ms": latency.single_p99_ms,
                "latency_sample_users": latency.n_single_users,
                "peak_memory_measures": costs.PEAK_MEMORY_NOTE,
            },
            "n_test_users": result.n_users,
            "notes": notes + list(result.notes),
            "split": prep.summary,
            "files": {"recs": "recs.csv", "per_user": "per_user.npz"},
        }

    def _audit(self, recs: Any, prep: _Prepared, notes: list[str]) -> dict[str, Any]:
        """The bias and discovery audit of a cell's lists at K = 10 (or the largest K below
        it, else the smallest); {} with a note when it fails (the cell's metrics still count)."""
        from serendip.evaluation.audit import audit_recommendations

        ks = self.config.k
        k = 10 if 10 in ks else max([x for x in ks if x < 10], default=min(ks))
        try:
            return audit_recommendations(
                recs, prep.split.train, prep.split.test, k=k, fold_in=prep.split.fold_in
            ).to_dict()
        except Exception as exc:  # an audit problem must not lose the cell
            notes.append(f"audit failed: {type(exc).__name__}: {exc}")
            return {}

    def _write_cell_files(self, directory: Path, recs: Any, result: Any) -> None:
        import io

        frame = recs.to_frame()
        atomic_write_text(directory / "recs.csv", frame.to_csv(index=False))
        per_user = result.per_user
        arrays: dict[str, np.ndarray] = {"users": per_user["user"].to_numpy().astype(str)}
        for name in PER_USER_METRICS:
            for kk in self.config.k:
                col = f"{name}@{kk}"
                if col in per_user:
                    arrays[col] = per_user[col].to_numpy(dtype=np.float64)
        buf = io.BytesIO()
        # numpy's stub types `allow_pickle: bool` next to `**kwds`, so mypy fears a key of
        # `arrays` could land there; the keys are metric names, never "allow_pickle".
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(directory / "per_user.npz", buf.getvalue())

    # ------------------------------------------------------------- data and splits
    def _dataset(self, spec: DatasetSpec) -> Dataset:
        if spec.name not in self._datasets:
            from serendip.data.loaders import load_source

            path = self.sources.get(spec.name) or resolve_source(
                spec.source,
                cache_dir=self.out / "cache",
                seed=self.config.seed,
                shared_data=self.shared_data,
            )
            self._datasets[spec.name] = load_source(path)
        return self._datasets[spec.name]

    def _prepare(self, dspec: DatasetSpec, pspec: ProtocolSpec) -> _Prepared:
        key = (dspec.name, pspec.name)
        if key in self._splits:
            return self._splits[key]
        ds = self._dataset(dspec)
        split = split_dataset(ds, pspec.method, **pspec.split_params)
        fit_train = split.train
        context = None
        if pspec.method == "cold-users":
            # The held-out users are unknown to the model; their fold-in history is context.
            assert split.fold_in is not None
            cold = np.unique(
                np.concatenate([split.fold_in.interactions.user, split.test.interactions.user])
            )
            fit_train = _without_users(split.train, cold)
            context = _history(split.fold_in)
            # tune_model cannot pass fold-in context to a model, so a cold-user validation
            # split would score empty histories: tune on a random holdout of train instead.
            from serendip.evaluation.splits import validation_split

            inner = validation_split(fit_train, "random", **_random_defaults(self.config.seed))
            tune_train, tune_val, scheme = inner.train, inner.test, "random holdout of train"
        else:
            split = with_validation(split)
            assert split.validation is not None
            tune_train, tune_val = split.validation.train, split.validation.test
            scheme = f"{pspec.method} split of train"
        summary = split.summary()
        if self.config.write_splits:
            self._write_split(dspec, pspec, split)
        prep = _Prepared(
            split=split,
            fit_train=fit_train,
            tune_train=tune_train,
            tune_validation=tune_val,
            tune_scheme=scheme,
            context=context,
            users=_test_users(split),
            summary=summary,
        )
        self._splits[key] = prep
        return prep

    def _write_split(self, dspec: DatasetSpec, pspec: ProtocolSpec, split: Split) -> None:
        from serendip.evaluation.io import write_split
        from serendip.models.artifacts import atomic_directory

        target = self.out / "splits" / dspec.name / pspec.name
        if (target / "split.json").is_file() and not self.fresh:
            return
        with atomic_directory(target) as tmp:
            write_split(split, tmp)

    # ------------------------------------------------------------- the end
    def _significance(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Paired comparisons with the best baseline, per dataset x protocol."""
        from serendip.evaluation.study.significance import compare_to_baseline, pick_baseline

        metric = "ndcg@10" if 10 in self.config.k else f"ndcg@{max(self.config.k)}"
        out: list[dict[str, Any]] = []
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            if r["status"] == "ok":
                groups.setdefault((r["dataset"], r["protocol"]), []).append(r)
        for (dname, pname), group in groups.items():
            baseline = pick_baseline(group, metric=metric)
            if baseline is None or len(group) < 2:
                why = "no baseline model ran" if baseline is None else "only one model"
                self.notes.append(f"significance skipped for {dname}/{pname}: {why}")
                continue
            names = [r["model"] for r in group]
            per_user = _aligned_per_user(self.out, dname, pname, names, metric)
            if baseline not in per_user or len(per_user) < 2:
                continue
            for comp in compare_to_baseline(
                per_user, baseline, metric=metric, seed=self.config.seed
            ):
                out.append({"dataset": dname, "protocol": pname, **comp})
        return out

    def _leaderboard(self, results: Mapping[str, Any]) -> None:
        from serendip.evaluation.study.leaderboard import write_leaderboard

        self.leaderboard_path = write_leaderboard(results, self.out)


def _random_defaults(seed: int) -> dict[str, Any]:
    from serendip.evaluation.study.config import DEFAULT_PROTOCOL_PARAMS

    return {**DEFAULT_PROTOCOL_PARAMS["random"], "seed": seed}


def _aligned_per_user(
    out: Path, dataset: str, protocol: str, models: list[str], metric: str
) -> dict[str, np.ndarray]:
    """model -> per-user `metric`, aligned on the users every model's per_user.npz holds."""
    loaded: dict[str, dict[str, float]] = {}
    for name in models:
        path = out / "cells" / dataset / protocol / name / "per_user.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as npz:
            if metric not in npz:
                continue
            loaded[name] = dict(zip(npz["users"].tolist(), npz[metric].tolist(), strict=True))
    if not loaded:
        return {}
    common = sorted(set.intersection(*(set(v) for v in loaded.values())))
    return {name: np.array([v[u] for u in common], dtype=np.float64) for name, v in loaded.items()}


def run_study(
    config: StudyConfig,
    out: Path,
    *,
    fresh: bool = False,
    on_event: Callable[[StudyEvent], None] | None = None,
    shared_data: Path | None = None,
    sources: Mapping[str, Path] | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    leaderboard: bool = True,
) -> dict[str, Any]:
    """Run a study into `out` and return its results (see `StudyRunner`)."""
    runner = StudyRunner(
        config,
        out,
        fresh=fresh,
        on_event=on_event,
        shared_data=shared_data,
        sources=sources,
        datasets=datasets,
        leaderboard=leaderboard,
    )
    return runner.run()
