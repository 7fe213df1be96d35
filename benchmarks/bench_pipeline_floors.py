"""Issue 16's floors: the pipeline tuned by `serendip fit --tune`'s machinery against the best
single zoo model tuned the same way.

For each split -- MovieLens 100K random (per-user 80/20, seed 42), temporal (global cut, last
20%) and cold users (10% of users held out, half their items folded in at request time), Last.fm
2K random and the synthetic `small` platform temporal; the study's split functions and default
parameters (`DEFAULT_PROTOCOL_PARAMS`) -- this script:

1. tunes every model of a shortlist of strong single models (`SHORTLIST`) and the pipeline with
   `tune_and_fit` (what `serendip fit --tune` runs): validation carved from the split's train
   only, the way the split is judged (random on random and cold users -- as the study tunes
   cold-user cells --, temporal on temporal), optuna TPE over the model's search space on
   validation NDCG@10, the best refitted on the whole train;
2. evaluates each refitted model on test over the full catalog (NDCG@10, out-of-network
   HitRate@10 where a social graph exists, coverage, novelty; cold users get their fold-in
   history as request-time context); the best single model is chosen by *validation* NDCG@10
   (its test score is the floor), the best on test is reported beside it for strictness;
3. checks the floors with paired per-user statistics: the standard error of each NDCG@10 and a
   paired bootstrap 95% interval of the pipeline's relative gain;
4. (`--dataset fit-tune-time`) times `serendip fit --model pipeline --tune` on the whole of
   MovieLens 100K with the CLI's default trial count, end to end in a subprocess: wall and CPU.

Writes `benchmarks/results/pipeline_floors.json` and `.md`; rows of splits not run now keep
their stored values (each row records the command that made it), so a run can be split:

    python benchmarks/bench_pipeline_floors.py --dataset ml-100k
    python benchmarks/bench_pipeline_floors.py --dataset fit-tune-time
    python benchmarks/bench_pipeline_floors.py --dataset lastfm-2k --budget 8
    python benchmarks/bench_pipeline_floors.py --dataset small --budget 8
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_pipeline import SHARED, _load
from serendip.data.dataset import Dataset
from serendip.errors import SerendipError
from serendip.evaluation import evaluate_recommendations
from serendip.evaluation.fit_tuned import DEFAULT_TRIALS, tune_and_fit
from serendip.evaluation.splits import Split, split_dataset
from serendip.evaluation.study.config import DEFAULT_PROTOCOL_PARAMS
from serendip.evaluation.study.runner import _history, _without_users
from serendip.evaluation.tuning import TrialRecord, needs_network

ROOT = Path(__file__).resolve().parent
RESULTS_DIR = ROOT / "results"
K = 10
#: The strong single models of the zoo on these datasets (the study's and bench_pipeline's
#: winners: EASE and user-EASE on random splits, iALS, item-kNN, PureSVD; popularity and
#: time-decayed trending, which win ML100K temporal).
SHORTLIST = ("ease", "user-ease", "ials", "item-knn", "puresvd", "popularity", "trending")
#: Protocols per dataset, in run order.
SPLITS: dict[str, tuple[str, ...]] = {
    "ml-100k": ("random", "temporal", "cold-users"),
    "lastfm-2k": ("random",),
    "small": ("temporal",),
}
#: Models skipped per dataset: EASE's dense item x item matrix on `small` (20k items) is beyond
#: the shared machine's memory (as in bench_pipeline.py).
SKIP: dict[str, tuple[str, ...]] = {"small": ("ease",)}
#: The pipeline's default search budget per dataset, minutes (a pipeline fit takes ~15 s on
#: ML100K, ~2 min on Last.fm and `small` on one core); the zoo models get `ZOO_TRIALS` trials.
PIPELINE_BUDGET_MIN: dict[str, float] = {"ml-100k": 4.0, "lastfm-2k": 8.0, "small": 8.0}
ZOO_TRIALS: dict[str, int] = {"ml-100k": DEFAULT_TRIALS, "lastfm-2k": 10, "small": 8}
#: How each protocol's train is carved for validation (cold users: a random carving of the
#: warm users' train, as the study tunes cold-user cells; tune_model cannot fold histories in).
CARVE = {"random": "random", "temporal": "temporal", "cold-users": "random"}
TEMPORAL_GAIN = 0.03
FIT_TUNE_LIMIT_S = 15 * 60
N_BOOT = 2000
METRICS = ("ndcg@10", "oon_hit_rate@10", "coverage@10", "novelty@10")


# ----------------------------------------------------------------------------- running
def _split(ds: Dataset, protocol: str) -> tuple[Split, Dataset, dict[str, list[str]] | None]:
    """(the split, what models are fitted on, fold-in context): the study's split functions
    and defaults; cold users are removed from the fit's user vocabulary (the study's way)."""
    split = split_dataset(ds, protocol, **DEFAULT_PROTOCOL_PARAMS[protocol])
    if protocol != "cold-users":
        return split, split.train, None
    assert split.fold_in is not None
    cold = np.unique(
        np.concatenate([split.fold_in.interactions.user, split.test.interactions.user])
    )
    return split, _without_users(split.train, cold), _history(split.fold_in)


def _test_users(split: Split) -> np.ndarray:
    return split.test.users.lookup(np.unique(split.test.interactions.user))


def _evaluate(
    model: Any, split: Split, context: dict[str, list[str]] | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Test metrics over the full catalog, and per-user NDCG@10 / OON HitRate@10 by user ID."""
    users = _test_users(split)
    if context is not None and "context" in inspect.signature(model.recommend).parameters:
        recs = model.recommend(users, K, context=context)
    else:
        recs = model.recommend(users, K)
    res = evaluate_recommendations(
        recs, split.train, split.test, k=K, fold_in=split.fold_in, keep_per_user=True
    )
    assert res.per_user is not None
    rows = res.per_user.sort_values("user", kind="stable")
    per_user = {
        m: rows[m].to_numpy(np.float64) for m in ("ndcg@10", "oon_hit_rate@10") if m in rows
    }
    out = {m: res.metrics.get(m) for m in METRICS}
    for m, v in per_user.items():
        out[f"{m}_se"] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None
    out["n_users"] = len(rows)
    return out, per_user


def _tune(
    name: str, fit_train: Dataset, carve: str, trials: int | None, budget_s: float | None
) -> tuple[Any, dict[str, Any]]:
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    log: list[dict[str, Any]] = []

    def progress(rec: TrialRecord) -> None:
        nonlocal n
        err = f" error: {rec.error[:60]}" if rec.error else ""
        if rec.stage:  # the pipeline's source stage: a zoo model tuned alone
            print(f"    {name:10s} {rec.stage} val ndcg@10={rec.value:.4f} "
                  f"({rec.seconds:.1f}s){err}", flush=True)  # fmt: skip
            return
        n += 1
        searched = {k: v for k, v in rec.params.items() if not str(k).endswith(".params")}
        if "sources.collaborative.params" in rec.params:
            searched["collaborative"] = rec.params["sources.collaborative.params"]
        entry = {"value": rec.value, "seconds": rec.seconds, "params": searched}
        if rec.preferred is not None:  # the tie-break's metric (out-of-network hits)
            entry["preferred"] = rec.preferred
        log.append(entry)
        print(f"    {name:10s} trial {n:3d} val ndcg@10={rec.value:.4f} "
              f"({rec.seconds:.1f}s){err}", flush=True)  # fmt: skip

    model, record = tune_and_fit(
        fit_train, name, protocol=carve, trials=trials, budget_s=budget_s, seed=0, progress=progress
    )
    info = {
        "model": name,
        "validation_ndcg@10": record.best_value,
        "default_validation_ndcg@10": record.default_value,
        "trials": record.trials,
        "failed_trials": record.failed_trials,
        "tune_s": record.tune_seconds,
        "refit_s": record.refit_seconds,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "best_params": record.best_params,
        "ties_decided_by": record.prefer,
        "tied_trials": record.chosen_among,
    }
    if name == "pipeline":  # every trial, to see which dimensions cost (docs/research-log.md)
        info["trial_log"] = log
        stage = record.source_stage
        info["collaborative_source"] = None if stage is None else stage.to_dict()
    fb = getattr(model, "fallback", None) if name == "pipeline" else None
    if fb is not None:
        info["fallback"] = fb.to_dict()
    return model, info


def _paired(p: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Paired comparison of per-user scores: mean difference with its standard error and
    normal 95% interval, and the relative gain mean(p)/mean(b) - 1 with a paired bootstrap
    95% interval (users resampled)."""
    d = p - b
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(N_BOOT, len(d)))
    pm, bm = p[idx].mean(axis=1), b[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = pm / bm - 1.0
    base = float(b.mean())
    return {
        "diff": float(d.mean()),
        "diff_se": se,
        "diff_ci95": [float(d.mean() - 1.96 * se), float(d.mean() + 1.96 * se)],
        "gain": float(p.mean() / base - 1.0) if base > 0 else float("nan"),
        "gain_ci95": [float(np.nanpercentile(gains, 2.5)), float(np.nanpercentile(gains, 97.5))],
    }


def _code_version() -> str:
    """The commit the run's code came from ("+dirty": with uncommitted changes under src/)."""

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", *a], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", str(ROOT.parent / "src"))
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def run_split(
    name: str, ds: Dataset, protocol: str, trials: int | None, budget_min: float | None,
    zoo_trials: int | None,
) -> dict[str, Any]:  # fmt: skip
    split, fit_train, context = _split(ds, protocol)
    carve = CARVE[protocol]
    n_zoo = zoo_trials or ZOO_TRIALS[name]
    if trials is None and budget_min is None:
        budget_min = PIPELINE_BUDGET_MIN[name]
    budget_s = None if budget_min is None else budget_min * 60.0
    print(f"== {name} {protocol}: {fit_train.n_users} users, {fit_train.n_interactions} train "
          f"interactions, {len(_test_users(split))} test users; validation carve {carve}",
          flush=True)  # fmt: skip
    row: dict[str, Any] = {
        "dataset": name,
        "protocol": protocol,
        "split_params": DEFAULT_PROTOCOL_PARAMS[protocol],
        "validation_carve": carve,
        "n_train_interactions": fit_train.n_interactions,
        "n_test_users": len(_test_users(split)),
        "social": bool(len(ds.social)),
        "zoo_trials": n_zoo,
        "pipeline_trials": trials,
        "pipeline_budget_min": budget_min,
        "singles": [],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": _code_version(),
    }
    per_user: dict[str, dict[str, np.ndarray]] = {}
    for model_name in (*SHORTLIST, "pipeline"):
        if model_name in SKIP.get(name, ()):
            continue
        is_pipe = model_name == "pipeline"
        try:
            model, info = _tune(
                model_name, fit_train, carve,
                trials if is_pipe else n_zoo, budget_s if is_pipe else None,
            )  # fmt: skip
        except SerendipError as exc:
            print(f"  {model_name:10s} skipped: {exc}", flush=True)
            continue
        test, per_user[model_name] = _evaluate(model, split, context)
        info["test"] = test
        print(f"  {model_name:10s} val {info['validation_ndcg@10']:.4f} -> test ndcg@10 "
              f"{test['ndcg@10']:.4f} (+-{test['ndcg@10_se']:.4f}) oon_hr "
              f"{test['oon_hit_rate@10'] if test['oon_hit_rate@10'] is not None else '-'} "
              f"[{info['trials']} trials, {info['wall_s']:.0f}s]", flush=True)  # fmt: skip
        if is_pipe:
            row["pipeline"] = info
        else:
            row["singles"].append(info)
    singles = row["singles"]
    best_val = max(singles, key=lambda r: r["validation_ndcg@10"])
    best_test = max(singles, key=lambda r: r["test"]["ndcg@10"])
    row["best_by_validation"] = best_val["model"]
    row["best_on_test"] = best_test["model"]
    pipe = per_user["pipeline"]
    row["paired"] = {
        m["model"]: _paired(pipe["ndcg@10"], per_user[m["model"]]["ndcg@10"]) for m in singles
    }
    if "oon_hit_rate@10" in pipe:
        row["paired_oon"] = {
            m["model"]: _paired(pipe["oon_hit_rate@10"], per_user[m["model"]]["oon_hit_rate@10"])
            for m in singles
            if "oon_hit_rate@10" in per_user[m["model"]]
        }
    row["floors"] = _floors(row)
    for f in row["floors"]:
        print(f"  floor {f['floor']}: {'met' if f['met'] else 'MISSED'} -- {f['detail']}",
              flush=True)  # fmt: skip
    return row


# ----------------------------------------------------------------------------- floors
def _floors(row: dict[str, Any]) -> list[dict[str, Any]]:
    p = row["pipeline"]["test"]
    by = {s["model"]: s for s in row["singles"]}
    best = row["best_by_validation"]
    strict = row["best_on_test"]
    out: list[dict[str, Any]] = []

    def vs(ref: str, need: float, what: str) -> None:
        pr = row["paired"][ref]
        r = by[ref]["test"]
        # a reference at 0 (popularity on a feed of new items): the gain is undefined, the
        # difference decides
        met = pr["gain"] >= need if r["ndcg@10"] > 0 else pr["diff"] >= 0
        lo, hi = pr["gain_ci95"]
        within = lo <= need <= hi
        noise = " (within noise: the 95% interval holds the floor)" if within else ""
        out.append({
            "floor": what,
            "met": bool(met),
            "within_noise": bool(within),
            "reference": ref,
            "pipeline": p["ndcg@10"], "pipeline_se": p["ndcg@10_se"],
            "reference_ndcg": r["ndcg@10"], "reference_se": r["ndcg@10_se"],
            "gain": pr["gain"], "gain_ci95": pr["gain_ci95"], "need": need,
            "detail": f"NDCG@10 {p['ndcg@10']:.4f} +- {p['ndcg@10_se']:.4f} vs {ref} "
            f"{r['ndcg@10']:.4f} +- {r['ndcg@10_se']:.4f}: {pr['gain']:+.1%} "
            f"[95% CI {lo:+.1%}, {hi:+.1%}], floor {need:+.0%}{noise}",
        })  # fmt: skip

    need = TEMPORAL_GAIN if row["protocol"] == "temporal" else 0.0
    vs(best, need, f"NDCG@10 >= best single by validation{' +3%' if need else ''}")
    if strict != best:
        vs(strict, need, f"(strict) NDCG@10 >= best single on test{' +3%' if need else ''}")
    if "popularity" in by:
        vs("popularity", 0.0, "NDCG@10 >= popularity")
    if row["dataset"] == "lastfm-2k" and "paired_oon" in row and best in row["paired_oon"]:
        po, pn = row["paired_oon"][best], row["paired"][best]
        b = by[best]["test"]
        ok = po["diff"] > 0 and pn["diff"] >= -pn["diff_se"]
        out.append({
            "floor": "OON HitRate@10 > best single's, NDCG@10 loss within its SE",
            "met": bool(ok),
            "reference": best,
            "pipeline_oon": p["oon_hit_rate@10"], "reference_oon": b["oon_hit_rate@10"],
            "oon_diff": po["diff"], "oon_diff_ci95": po["diff_ci95"],
            "ndcg_diff": pn["diff"], "ndcg_diff_se": pn["diff_se"],
            "detail": f"OON HitRate@10 {p['oon_hit_rate@10']:.4f} vs {best} "
            f"{b['oon_hit_rate@10']:.4f} (diff {po['diff']:+.4f}, 95% CI "
            f"[{po['diff_ci95'][0]:+.4f}, {po['diff_ci95'][1]:+.4f}]); NDCG@10 diff "
            f"{pn['diff']:+.4f} vs its SE {pn['diff_se']:.4f}",
        })  # fmt: skip
    return out


# ----------------------------------------------------------------------------- fit --tune time
def time_fit_tune(platform_dir: Path) -> dict[str, Any]:
    """`serendip fit --model pipeline --tune` on the whole of ML100K (its files as a user would
    give them), the CLI's default trial count, in a subprocess: wall and CPU (user + system of
    the child)."""
    ds = _load("ml-100k", platform_dir)
    from serendip.evaluation.io import interactions_table

    with tempfile.TemporaryDirectory() as d:
        inter, items = Path(d) / "interactions.csv", Path(d) / "items.csv"
        interactions_table(ds).to_csv(inter, index=False)
        ds.items_frame().to_csv(items, index=False)
        cli = Path(sys.executable).with_name("serendip")
        cmd = [str(cli), "fit", "--model", "pipeline", "--tune", "--interactions", str(inter),
               "--items", str(items), "--out", str(Path(d) / "model")]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(proc.stdout[-3000:], proc.stderr[-2000:], flush=True)
        manifest: dict[str, Any] = {}
        mf = Path(d) / "model" / "manifest.json"
        if mf.is_file():
            manifest = json.loads(mf.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tuning = manifest.get("tuning", {})
    return {
        "command": "serendip fit --model pipeline --tune --interactions ml-100k/interactions.csv "
        "--items ml-100k/items.csv --out DIR",
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "trials": tuning.get("trials"),
        "protocol": tuning.get("protocol"),
        "best_validation": tuning.get("best_validation"),
        "default_validation": tuning.get("default_validation"),
        "tune_s": tuning.get("tune_seconds"),
        "refit_s": tuning.get("refit_seconds"),
        "limit_s": FIT_TUNE_LIMIT_S,
        "met": proc.returncode == 0 and wall < FIT_TUNE_LIMIT_S,
        "load_average_1min": os.getloadavg()[0],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ----------------------------------------------------------------------------- report
def _f(v: Any, nd: int = 4) -> str:
    return "–" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


_SOURCE_KEY = "sources.collaborative.params"


def _default_of(key: str) -> Any:
    """The untuned pipeline's value of a dotted search key."""
    from serendip.pipeline.config import PipelineConfig

    if key == _SOURCE_KEY:
        return {}
    node: Any = PipelineConfig().model_dump()
    for part in key.split("."):
        node = node[part]
    return node


def _shown(key: str, value: Any) -> str:
    if key == _SOURCE_KEY:
        if not value:
            return "ials (default)"
        params = ", ".join(f"{k} {_f(v, 3)}" for k, v in value.get("params", {}).items())
        return f"{value['model']}" + (f" ({params})" if params else "")
    return "None" if value is None else _f(value, 3)


def defaults_table(rows: dict[str, Any]) -> list[str]:
    """Point 16.5: each searched knob's default beside what every split's tuned pipeline chose,
    and whether they agree on moving it (every split moved, the same way)."""
    from serendip.pipeline.config import SEARCH_SPACE

    keys = [*SEARCH_SPACE, _SOURCE_KEY, "fallback.serve"]
    splits = [k for k, r in rows.items() if r.get("pipeline", {}).get("best_params") is not None]
    lines = [
        "",
        "### The defaults against the tuned runs (16.5)",
        "",
        "Each knob the search covers: the untuned default, the value each split's tuned pipeline "
        "chose (`-` = the default kept; `n/a` = an out-of-network knob on data without a social "
        "graph, where it does nothing), and the verdict: a default moves only where every split "
        "it applies to moved it the same way (up, down, or to the same option).",
        "",
        f"| knob | default | {' | '.join(splits)} | verdict |",
        "|---|---|" + "---|" * len(splits) + "---|",
    ]
    for key in keys:
        default = _default_of(key)
        # out-of-network knobs do nothing without a social graph: judged on social splits only
        applies = [bool(rows[s].get("social")) or not needs_network(key) for s in splits]
        chosen = [
            rows[s]["pipeline"]["best_params"].get(key, default)
            for s, a in zip(splits, applies, strict=True)
            if a
        ]
        moved = [c != default for c in chosen]
        shown = iter([_shown(key, c) if m else "-" for c, m in zip(chosen, moved, strict=True)])
        cells = [next(shown) if a else "n/a" for a in applies]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if not any(moved):
            verdict = "kept by every split"
        elif not all(moved):
            verdict = f"moved in {sum(moved)} of {len(moved)}: keep"
        elif numeric and all(isinstance(c, (int, float)) for c in chosen):
            ups = sum(c > default for c in chosen)
            same = ups in (0, len(chosen))
            way = "up" if ups else "down"
            verdict = f"every split moved it {way}: change" if same else "no agreement: keep"
        else:
            same = all(c == chosen[0] for c in chosen)
            verdict = "every split chose the same: change" if same else "no agreement: keep"
        lines.append(f"| `{key}` | {_shown(key, default)} | {' | '.join(cells)} | {verdict} |")
    return lines


def write_markdown(stored: dict[str, Any]) -> str:
    rows = stored.get("rows", {})
    lines = [
        "## Pipeline floors (issue 16)",
        "",
        f"- Machine: {stored.get('machine')}; BLAS/OpenMP pinned to one thread; one process.",
        "- Every model is tuned by `tune_and_fit` (what `serendip fit --tune` runs): validation "
        "carved from the split's train only (random on the random and cold-user splits, "
        "temporal on the temporal ones), optuna TPE on validation NDCG@10 (ties on social data "
        "go to out-of-network HitRate), the best refitted on the whole train, then scored on "
        "test over the full catalog. The pipeline's search starts with its source stage (the "
        "collaborative candidates tuned alone; the best offered as its source, under the ranker "
        "or served alone), inside the same budget. The best single model is chosen by "
        "validation NDCG@10 "
        "(never by test); the best on test is checked too where it differs (strict). "
        "`+-` = standard error over test users; gains with a paired bootstrap 95% interval "
        f"({N_BOOT} resamples of users).",
        '- A floor is met or missed on the point estimate; "within noise" marks a verdict whose '
        "95% interval holds the floor's line (a rerun with other seeds could flip it). What was "
        'tried where a floor is missed: docs/research-log.md, "Pipeline floors (issue 16)".',
        "",
        "### Floors",
        "",
        "| split | floor | verdict | numbers |",
        "|---|---|---|---|",
    ]
    for key, r in rows.items():
        for fl in r["floors"]:
            lines.append(
                f"| {key} | {fl['floor']} | {'met' if fl['met'] else '**MISSED**'} | "
                f"{fl['detail']} |"
            )
    t = stored.get("fit_tune_time")
    if t:
        lines.append(
            f"| ml-100k (whole) | `fit --model pipeline --tune` < 15 min on 2 cores | "
            f"{'met' if t['met'] else '**MISSED**'} | wall {t['wall_s'] / 60:.1f} min, CPU "
            f"{t['cpu_s'] / 60:.1f} min, {t['trials']} trials ({t['protocol']} validation), "
            f"exit {t['returncode']}, 1-min load {t['load_average_1min']:.1f} |"
        )
    for key, r in rows.items():
        pipe = r["pipeline"]
        lines += [
            "",
            f"### {key} ({r['n_train_interactions']} train interactions, {r['n_test_users']} "
            f"test users; validation: {r['validation_carve']} carve of train)",
            "",
            f"Command: `{r['command']}` ({r['date']}, code {r.get('code', '?')}); pipeline "
            "search: "
            + (
                f"{r['pipeline_budget_min']:g} min budget"
                if r["pipeline_budget_min"] is not None
                else f"{r['pipeline_trials']} trials"
            )
            + f", single models: {r['zoo_trials']} trials each.",
            "",
            "| model | trials | val NDCG@10 | test NDCG@10 | +- SE | OON HitRate@10 | "
            "coverage@10 | novelty@10 | tune+refit s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in [*r["singles"], {**pipe, "model": "**pipeline**"}]:
            te = s["test"]
            mark = " (best by val)" if s["model"] == r["best_by_validation"] else ""
            mark += " (best on test)" if s["model"] == r["best_on_test"] else ""
            lines.append(
                f"| {s['model']}{mark} | {s['trials']} | {_f(s['validation_ndcg@10'])} | "
                f"{_f(te['ndcg@10'])} | {_f(te['ndcg@10_se'])} | {_f(te['oon_hit_rate@10'])} | "
                f"{_f(te['coverage@10'])} | {_f(te['novelty@10'], 2)} | {s['wall_s']:.0f} |"
            )
        fb = pipe.get("fallback")
        if fb:
            segs = ", ".join(
                f"{seg} users: {v.get('choice')}" for seg, v in (fb.get("segments") or {}).items()
            )
            lines += ["", f"Pipeline fallback check at refit: {segs}."]
        stage = pipe.get("collaborative_source")
        if stage:
            alone = ", ".join(
                f"{m} {_f(c.get('validation'))}" for m, c in stage["candidates"].items()
            )
            lines += [
                "",
                f"Pipeline's source stage (each model tuned alone on the same carving, "
                f"{stage['seconds']:.0f} s): {alone}; best {stage['chosen']} "
                f"`{json.dumps(stage['params'], default=str)}`.",
            ]
        bp = {
            k: v
            for k, v in pipe["best_params"].items()
            if not str(k).startswith("sources.") or "quota" in str(k) or "collaborative" in k
        }
        lines += ["", f"Pipeline's tuned parameters: `{json.dumps(bp, default=str)}`."]
    lines += defaults_table(rows)
    if stored.get("notes"):
        lines += ["", "### Notes", "", *[f"- {n}" for n in stored["notes"]]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dataset", action="append", choices=[*SPLITS, "fit-tune-time"],
        help="repeatable; default: all, in the order ml-100k, fit-tune-time, lastfm-2k, small",
    )  # fmt: skip
    ap.add_argument("--protocol", action="append", help="only these protocols of the datasets")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--trials", type=int, help="pipeline trials (instead of the time budget)")
    g.add_argument("--budget", type=float, help="pipeline search budget in minutes per split")
    ap.add_argument("--zoo-trials", type=int, help="trials per single model")
    ap.add_argument(
        "--platform-dir", type=Path, default=Path(tempfile.gettempdir()) / "serendip-small-42"
    )
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    ap.add_argument(
        "--assemble", action="store_true", help="only re-judge the stored rows and rewrite the md"
    )
    args = ap.parse_args()
    names = args.dataset or ["ml-100k", "fit-tune-time", "lastfm-2k", "small"]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.results_dir / "pipeline_floors.json"
    command = "python benchmarks/bench_pipeline_floors.py " + " ".join(sys.argv[1:])

    def save(update: Any) -> None:
        stored = json.loads(json_path.read_text()) if json_path.exists() else {}
        stored.setdefault("rows", {})
        update(stored)
        stored["machine"] = (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
            f"Python {sys.version.split()[0]}"
        )
        stored["data"] = str(SHARED)
        json_path.write_text(json.dumps(stored, indent=2, default=float) + "\n")
        (args.results_dir / "pipeline_floors.md").write_text(write_markdown(stored))

    if args.assemble:
        save(lambda s: [r.__setitem__("floors", _floors(r)) for r in s["rows"].values()])
        print((args.results_dir / "pipeline_floors.md").read_text())
        return
    for name in names:
        if name == "fit-tune-time":
            t = time_fit_tune(args.platform_dir)
            print(f"fit --tune: wall {t['wall_s']:.0f}s cpu {t['cpu_s']:.0f}s", flush=True)
            save(lambda s, t=t: s.__setitem__("fit_tune_time", {**t, "run_by": command}))
            continue
        ds = _load(name, args.platform_dir)
        for protocol in SPLITS[name]:
            if args.protocol and protocol not in args.protocol:
                continue
            row = run_split(name, ds, protocol, args.trials, args.budget, args.zoo_trials)
            row["command"] = command
            save(
                lambda s, row=row: s["rows"].__setitem__(f"{row['dataset']}/{row['protocol']}", row)
            )
    print((args.results_dir / "pipeline_floors.md").read_text())


if __name__ == "__main__":
    main()


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    stored = json.loads(path.read_text())
    table = ["| split | floor | verdict |", "|---|---|---|"]
    met = missed = noisy = 0
    for key, r in stored.get("rows", {}).items():
        for fl in r["floors"]:
            if fl["floor"].startswith("(strict)"):
                continue
            met += bool(fl["met"])
            missed += not fl["met"]
            within = bool(fl.get("within_noise"))
            noisy += within
            word = ("met" if fl["met"] else "MISSED") + (" (within noise)" if within else "")
            table.append(f"| {key} | {fl['floor']} | {word} |")
    t = stored.get("fit_tune_time")
    if t:
        met += bool(t["met"])
        missed += not t["met"]
        table.append(
            f"| ml-100k | `fit --tune` < 15 min | {'met' if t['met'] else 'MISSED'} "
            f"({t['wall_s'] / 60:.1f} min) |"
        )
    verdict = (
        f"{met} floors met, {missed} missed on the point estimate; {noisy} of them within "
        "noise (the 95% interval holds the floor's line; see the full table)"
    )
    return table, verdict, f"{met} met, {missed} missed ({noisy} within noise)"
