"""Model zoo accuracy benchmark: writes the model table of benchmarks/RESULTS.md from a real run.

Protocol (issue 3): every interaction counts (ML100K: binary ratings; Last.fm: listen counts as
confidence through each model's own weighting parameter), per-user random 80/20 holdout (seed 42,
users with fewer than 5 interactions kept whole in train), NDCG@10 over the full catalog minus each
user's training items, averaged over all test users. Parameters come from
`benchmarks/model_params.json` (per dataset; what tuning on validation chose); with `--tune N`
each model is re-tuned with N optuna trials on a validation split carved from train (same scheme,
seed 42) and the file is updated. Test data is never used for tuning.

    python benchmarks/bench_models.py --dataset ml-100k --dataset lastfm-2k [--tune 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from serendip.data.loaders import load_lastfm, load_movielens
from serendip.evaluation import evaluate_recommendations, random_split, validation_split
from serendip.evaluation.study.runner import shared_data_dir
from serendip.evaluation.tuning import tune_model
from serendip.models.registry import MODELS, get_model_class

ROOT = Path(__file__).resolve().parent
SHARED = shared_data_dir()
PARAMS_FILE = ROOT / "model_params.json"
RESULTS_DIR = ROOT / "results"

#: Floors of issue 3 (NDCG@10 on the test split).
FLOORS: dict[str, dict[str, float]] = {
    "ml-100k": {
        "item-knn": 0.39,
        "ials": 0.40,
        "bpr": 0.40,
        "ease": 0.45,
        "multvae": 0.42,
        "neumf": 0.38,
        "lightfm": 0.38,
        "weighted-hybrid": 0.46,
    },
    "lastfm-2k": {},
}
LOADERS = {"ml-100k": load_movielens, "lastfm-2k": load_lastfm}
SOCIAL = ("in-network", "social-ppr", "socialmf")


def _params(dataset: str) -> dict[str, dict[str, Any]]:
    if PARAMS_FILE.exists():
        return dict(json.loads(PARAMS_FILE.read_text()).get(dataset, {}))
    return {}


def _save_params(dataset: str, params: dict[str, dict[str, Any]]) -> None:
    allp = json.loads(PARAMS_FILE.read_text()) if PARAMS_FILE.exists() else {}
    allp[dataset] = params
    PARAMS_FILE.write_text(json.dumps(allp, indent=2, sort_keys=True) + "\n")


def run_dataset(
    dataset: str, models: list[str], tune_trials: int, tune_timeout: float
) -> dict[str, Any]:
    ds = LOADERS[dataset](SHARED / dataset)
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    val = validation_split(split.train, "random", test_fraction=0.2, seed=42, min_interactions=5)
    params = _params(dataset)
    test_users = split.test.users.lookup(np.unique(split.test.interactions.user))
    rows: list[dict[str, Any]] = []
    for name in models:
        cls = get_model_class(name)
        base = params.get(name, {})
        row: dict[str, Any] = {"model": name, "family": cls.family}
        if tune_trials > 0:
            t0 = time.perf_counter()
            res = tune_model(
                name,
                val.train,
                val.test,
                base_params=base,
                n_trials=tune_trials,
                timeout_s=tune_timeout,
                seed=42,
            )
            base = res.best_params
            params[name] = base
            _save_params(dataset, params)
            row["validation_ndcg@10"] = res.best_value
            row["tuning_trials"] = len(res.trials)
            row["tuning_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = cls(base).fit(split.train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = model.recommend(test_users, 10)
        rec_s = time.perf_counter() - t0
        result = evaluate_recommendations(recs, split.train, split.test, k=10)
        m = result.metrics
        row.update(
            {
                "params": model.get_params(),
                "ndcg@10": m["ndcg@10"],
                "precision@10": m["precision@10"],
                "recall@10": m["recall@10"],
                "coverage@10": m.get("coverage@10"),
                "novelty@10": m.get("novelty@10"),
                "fit_s": fit_s,
                "recommend_ms_per_user": 1000 * rec_s / max(len(test_users), 1),
                "floor": FLOORS.get(dataset, {}).get(name),
            }
        )
        rows.append(row)
        floor = row["floor"]
        mark = "" if floor is None else (" ok" if row["ndcg@10"] >= floor else f" BELOW {floor}")
        print(
            f"{dataset:10s} {name:20s} ndcg@10={row['ndcg@10']:.4f} fit={fit_s:6.1f}s{mark}",
            flush=True,
        )
    return {
        "dataset": dataset,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_interactions": ds.n_interactions,
        "n_test_users": len(test_users),
        "rows": rows,
    }


def _fmt(v: Any, nd: int = 4) -> str:
    return "" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def write_markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Model zoo accuracy (issue 3)",
        "",
        "- Commands: each row was produced by the command recorded beside it in "
        "`benchmarks/results/models-<dataset>.json`; all rows: "
        "`python benchmarks/bench_models.py --dataset ml-100k --dataset lastfm-2k`",
        "- Machine: recorded per row in the JSON (`machine`); rows run elsewhere than the 2-core "
        "reference machine are listed under each table. Fit times include the machine's other load.",
        "- Protocol: per-user random 80/20 holdout (seed 42; users with < 5 interactions kept in train), "
        "full-catalog ranking minus training items, averages over all test users. Parameters: "
        "`benchmarks/model_params.json`, chosen on a validation split carved from train.",
        "",
    ]
    for d in results["datasets"]:
        lines += [
            f"### {d['dataset']} ({d['n_users']} users, {d['n_items']} items, {d['n_interactions']} interactions, {d['n_test_users']} test users)",
            "",
            "| model | family | NDCG@10 | floor | P@10 | R@10 | coverage@10 | novelty@10 | fit s | ms/user |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        pop = next((r["ndcg@10"] for r in d["rows"] if r["model"] == "popularity"), None)
        for r in sorted(d["rows"], key=lambda r: -r["ndcg@10"]):
            floor = r["floor"]
            status = (
                ""
                if floor is None
                else (f"{floor:.2f} ✓" if r["ndcg@10"] >= floor else f"{floor:.2f} ✗")
            )
            lines.append(
                f"| {r['model']} | {r['family']} | {_fmt(r['ndcg@10'])} | {status} | {_fmt(r['precision@10'])} | "
                f"{_fmt(r['recall@10'])} | {_fmt(r['coverage@10'])} | {_fmt(r['novelty@10'], 2)} | "
                f"{_fmt(r['fit_s'], 1)} | {_fmt(r['recommend_ms_per_user'], 2)} |"
            )
        elsewhere: dict[str, list[str]] = {}
        for r in d["rows"]:
            if not str(r.get("machine", "")).startswith("2 CPU cores"):
                elsewhere.setdefault(str(r.get("machine", "unknown")), []).append(r["model"])
        for machine, names in elsewhere.items():
            lines.append("")
            lines.append(f"Run on {machine}: {', '.join(names)}.")
        if pop:
            social = [r for r in d["rows"] if r["model"] in SOCIAL]
            if social:
                lines.append("")
                lines.append(
                    "Social models vs popularity (NDCG@10 ratio): "
                    + ", ".join(f"{r['model']} {r['ndcg@10'] / pop:.2f}x" for r in social)
                )
        lines.append("")
    return "\n".join(lines)


def _merge(dataset_result: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Update results/models-<dataset>.json with this run's rows (other models' rows are kept,
    so the zoo can be benchmarked in parts); each row records the command that produced it."""
    path = RESULTS_DIR / f"models-{dataset_result['dataset']}.json"
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    ran = {r["model"] for r in dataset_result["rows"]}
    for r in dataset_result["rows"]:
        r.update(meta)
    rows = [r for r in old["rows"] if r["model"] not in ran] + dataset_result["rows"]
    order = {name: i for i, name in enumerate(MODELS)}
    merged = {**dataset_result, "rows": sorted(rows, key=lambda r: order.get(r["model"], 999))}
    path.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", action="append", choices=sorted(LOADERS))
    ap.add_argument("--models", default="all", help="comma-separated registry names, or 'all'")
    ap.add_argument("--skip", default="", help="comma-separated registry names to leave out")
    ap.add_argument(
        "--tune",
        type=int,
        default=0,
        help="optuna trials per model on validation (0: use model_params.json)",
    )
    ap.add_argument(
        "--tune-timeout", type=float, default=600.0, help="seconds of tuning per model at most"
    )
    args = ap.parse_args()
    datasets = args.dataset or ["ml-100k", "lastfm-2k"]
    models = list(MODELS) if args.models == "all" else args.models.split(",")
    models = [m for m in models if m not in set(args.skip.split(","))]
    if not SHARED.is_dir():
        sys.exit(f"real datasets not found at {SHARED}")
    RESULTS_DIR.mkdir(exist_ok=True)
    command = "python benchmarks/bench_models.py " + " ".join(sys.argv[1:])
    machine = (
        f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}"
    )
    merged = []
    for d in datasets:
        start = time.perf_counter()
        res = run_dataset(d, models, args.tune, args.tune_timeout)
        res["wall_s"] = time.perf_counter() - start
        merged.append(_merge(res, {"command": command, "machine": machine}))
    # the table covers every dataset benchmarked so far, not only this run's
    all_results = [
        json.loads((RESULTS_DIR / f"models-{d}.json").read_text())
        for d in LOADERS
        if (RESULTS_DIR / f"models-{d}.json").exists()
    ]
    md = write_markdown({"datasets": all_results})
    (RESULTS_DIR / "models.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
