"""Spark local[2] iALS (MLlib) against Serendip's single-machine iALS (implicit) on MovieLens 100K.

Protocol: the model benchmark's and the study's random protocol: per-user random 80/20 holdout
(seed 42, users with < 5 interactions kept whole in train), NDCG@10 over the full catalogue minus
each user's training items, over all test users. Both engines get the same `IALS` parameters
(the ML100K defaults: factors 24, regularization 45, alpha 7, 15 iterations, "events"
weighting, i.e. binary ratings here), mapped to MLlib as `serendip.spark._als` documents:
ratings alpha * w - 1 with MLlib alpha 1 (implicit's confidence exactly), rank and maxIter as
they are, regParam = reg * (active users + active items) / (2 nnz) (MLlib multiplies regParam
by each user's / item's number of pairs; no single value equals a constant reg).

Rows: `local` (implicit), `spark mapped` (the mapping above), and `spark tuned`: MLlib's
regParam and alpha chosen on a validation split carved from train (same scheme, seed 42; test
never read), as the local defaults were chosen on validation for implicit's objective. Each row
is fitted with seeds 42, 43, 44; per-user NDCG@10 is averaged over the seeds, its mean gets a
percentile bootstrap 95% interval over users, and each Spark row a paired interval and a
Wilcoxon p-value against `local`. Floor (issue 17): within 2% NDCG@10 of the local model.

    python benchmarks/bench_spark.py [--master local[2]] [--seeds 42,43,44]

Writes benchmarks/results/spark.md and .json. Fit times: the model's own fit (Spark: the MLlib
job plus the driver's artifact assembly), without the session start (measured apart).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))
RESULTS = ROOT / "results"
FLOOR = -0.02  # relative NDCG@10 gap allowed (spark vs local)
#: MLlib settings searched on validation for the tuned row (regParam x implicit-scale alpha)
GRID_REG = (0.2, 0.3, 0.4, 0.5)
GRID_ALPHA = (3.0, 5.0, 7.0)


def _bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=SHARED / "ml-100k", help="MovieLens 100K")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seeds", default="42,43,44")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: MovieLens 100K not found at {args.data} (--data)")
    seeds = [int(s) for s in args.seeds.split(",")]

    from serendip.data.loaders import load_movielens
    from serendip.evaluation import evaluate_recommendations, random_split, validation_split
    from serendip.evaluation.study.significance import compare_to_baseline
    from serendip.models.factorization import IALS
    from serendip.spark import export_dataset
    from serendip.spark._als import SparkIALS, fit_ials
    from serendip.spark._session import spark_session

    wall0 = time.perf_counter()
    ds = load_movielens(args.data)
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    val = validation_split(split.train, "random", test_fraction=0.2, seed=42, min_interactions=5)
    test_users = split.test.users.lookup(np.unique(split.test.interactions.user))
    val_users = val.test.users.lookup(np.unique(val.test.interactions.user))
    base = {k: v for k, v in IALS().get_params().items() if k != "seed"}

    def per_user(model: Any, train: Any, test: Any, users: np.ndarray) -> tuple[np.ndarray, float]:
        res = evaluate_recommendations(
            model.recommend(users, 10), train, test, k=10, keep_per_user=True
        )
        assert res.per_user is not None
        frame = res.per_user.set_index("user").loc[users]
        return frame["ndcg@10"].to_numpy(dtype=np.float64), float(res.metrics["ndcg@10"])

    t0 = time.perf_counter()
    spark = spark_session(args.master, app_name="serendip-bench-spark")
    session_s = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    t0 = time.perf_counter()
    export = export_dataset(split.train, work / "train")
    export_s = time.perf_counter() - t0
    val_export = export_dataset(val.train, work / "val")

    rows: dict[str, dict[str, Any]] = {}

    def run(label: str, fit: Any) -> None:
        per_seed, fits, spark_s, per_user_all = [], [], [], []
        extra: dict[str, Any] = {}
        for seed in seeds:
            t = time.perf_counter()
            model = fit(seed)
            fits.append(time.perf_counter() - t)
            if isinstance(model, SparkIALS):
                spark_s.append(model.spark_seconds_)
                extra["mllib"] = {
                    "rank": model.mllib_.rank,
                    "maxIter": model.mllib_.max_iter,
                    "regParam": model.mllib_.reg_param,
                    "alpha": model.mllib_.alpha,
                    "rating": f"max({model.mllib_.rating_scale:g} * w - 1, 1e-6)",
                }
            values, mean = per_user(model, split.train, split.test, test_users)
            per_user_all.append(values)
            per_seed.append(mean)
            print(f"{label:13s} seed {seed}: ndcg@10 {mean:.4f} fit {fits[-1]:.1f}s", flush=True)
        averaged = np.mean(per_user_all, axis=0)
        lo, hi = _bootstrap_ci(averaged)
        rows[label] = {
            "engine": label,
            "ndcg@10": float(averaged.mean()),
            "ci_low": lo,
            "ci_high": hi,
            "ndcg@10_per_seed": per_seed,
            "fit_s": float(np.mean(fits)),
            "spark_job_s": float(np.mean(spark_s)) if spark_s else None,
            "_per_user": averaged,
            **extra,
        }

    run("local", lambda seed: IALS({**base, "seed": seed}).fit(split.train))
    run(
        "spark mapped",
        lambda seed: fit_ials(spark, export, split.train, {**base, "seed": seed}),
    )

    # the tuned row: regParam and alpha chosen on validation (seed 42), never on test
    search = []
    for reg in GRID_REG:
        for alpha in GRID_ALPHA:
            m = fit_ials(spark, val_export, val.train, {**base, "alpha": alpha}, reg_param=reg)
            _, score = per_user(m, val.train, val.test, val_users)
            search.append({"regParam": reg, "alpha": alpha, "validation_ndcg@10": score})
            print(f"validation regParam {reg} alpha {alpha}: {score:.4f}", flush=True)
    best = max(search, key=lambda r: r["validation_ndcg@10"])
    local_val = per_user(IALS({**base, "seed": 42}).fit(val.train), val.train, val.test, val_users)
    run(
        "spark tuned",
        lambda seed: fit_ials(
            spark,
            export,
            split.train,
            {**base, "alpha": best["alpha"], "seed": seed},
            reg_param=best["regParam"],
        ),
    )

    comparisons = compare_to_baseline(
        {name: r["_per_user"] for name, r in rows.items()}, "local", n_boot=2000, seed=0
    )
    local_ndcg = rows["local"]["ndcg@10"]
    for c in comparisons:
        r = rows[c["model"]]
        r["diff"] = c["mean_diff"]
        r["diff_ci"] = [c["ci_low"], c["ci_high"]]
        r["p_value"] = c["p_value"]
        r["relative"] = c["mean_diff"] / local_ndcg
        r["meets_floor"] = bool(r["relative"] >= FLOOR)
    for r in rows.values():
        r.pop("_per_user")
    import pyspark

    result = {
        "benchmark": "spark",
        "command": "python benchmarks/bench_spark.py " + " ".join(sys.argv[1:]),
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), Python "
        f"{platform.python_version()}, pyspark {pyspark.__version__}, shared with other work",
        "master": args.master,
        "dataset": {
            "name": "ml-100k",
            "train_interactions": split.train.n_interactions,
            "test_users": len(test_users),
        },
        "params": base,
        "seeds": seeds,
        "session_start_s": session_s,
        "export_s": export_s,
        "validation_search": search,
        "validation_best": best,
        "validation_local_ndcg@10": local_val[1],
        "floor_relative": FLOOR,
        "rows": list(rows.values()),
        "wall_s": time.perf_counter() - wall0,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "spark.md").write_text(write_markdown(result))
    print(verdict(result))
    spark.stop()


def verdict(d: dict[str, Any]) -> str:
    rows = {r["engine"]: r for r in d["rows"]}
    mapped, tuned = rows["spark mapped"], rows["spark tuned"]

    def say(r: dict[str, Any]) -> str:
        lo, hi = r["diff_ci"]
        return (
            f"{r['relative']:+.1%} (NDCG@10 {r['ndcg@10']:.4f} vs {rows['local']['ndcg@10']:.4f}, "
            f"paired 95% CI of the difference [{lo:+.4f}, {hi:+.4f}])"
        )

    head = "met" if mapped["meets_floor"] else "missed"
    text = f"Floor (within 2% of local iALS) {head} with the mapped parameters: {say(mapped)}"
    text += (
        f"; with MLlib's regParam/alpha tuned on validation: {say(tuned)}, floor "
        f"{'met' if tuned['meets_floor'] else 'missed'}."
    )
    return text


def write_markdown(d: dict[str, Any]) -> str:
    lines = [
        "## Spark local[2] iALS vs single-machine iALS (issue 17.5)",
        "",
        f"- Command: `{d['command'].strip()}`",
        f"- Run: {d['run_at']}; {d['machine']}; master `{d['master']}`",
        f"- Data: MovieLens 100K, per-user random 80/20 (seed 42; < 5 interactions kept in "
        f"train): {d['dataset']['train_interactions']:,} training interactions, "
        f"{d['dataset']['test_users']} test users; NDCG@10 over the full catalogue minus "
        "training items.",
        f"- Parameters (both engines): {json.dumps(d['params'])}; seeds {d['seeds']} (per-user "
        "NDCG averaged over the seeds; CIs: percentile bootstrap over users, 2000 resamples; p: "
        "Wilcoxon signed-rank, paired per user).",
        "- Mapping to MLlib: rating = alpha x weight - 1 with MLlib alpha 1 (implicit's "
        "confidence c = alpha x w exactly); rank = factors; maxIter = iterations; regParam = "
        "reg x (active users + items) / (2 nnz), since MLlib scales regParam by each "
        "user's/item's count of pairs (ALS-WR) and no single value reproduces a constant reg.",
        f"- Spark session start {d['session_start_s']:.1f} s and Parquet export "
        f"{d['export_s']:.2f} s, not in the fit times; a Spark fit time includes the MLlib job "
        "and the driver's artifact assembly (the first Spark fit also warms the JVM up). At "
        "this size Spark's per-job overhead dominates: local[2] is for testing the path, not "
        "for speed.",
        "",
        "| engine | NDCG@10 | 95% CI | per seed | vs local | paired 95% CI | p | within 2% | fit s "
        "| MLlib |",
        "|---|---:|---|---|---:|---|---:|---|---:|---|",
    ]
    for r in d["rows"]:
        seeds = ", ".join(f"{v:.4f}" for v in r["ndcg@10_per_seed"])
        if "relative" in r:
            rel = f"{r['relative']:+.1%}"
            ci = f"[{r['diff_ci'][0]:+.4f}, {r['diff_ci'][1]:+.4f}]"
            p = f"{r['p_value']:.3g}"
            ok = "yes" if r["meets_floor"] else "no"
        else:
            rel = ci = p = ok = ""
        mllib = r.get("mllib")
        mllib_s = (
            f"regParam {mllib['regParam']:.3g}, rating {mllib['rating']}, rank {mllib['rank']}, "
            f"maxIter {mllib['maxIter']}"
            if mllib
            else ""
        )
        lines.append(
            f"| {r['engine']} | {r['ndcg@10']:.4f} | [{r['ci_low']:.4f}, {r['ci_high']:.4f}] | "
            f"{seeds} | {rel} | {ci} | {p} | {ok} | {r['fit_s']:.1f} | {mllib_s} |"
        )
    best = d["validation_best"]
    lines += [
        "",
        f"Validation search of the tuned row (seed 42; local iALS on the same validation: "
        f"{d['validation_local_ndcg@10']:.4f}): best regParam {best['regParam']} with alpha "
        f"{best['alpha']:g} ({best['validation_ndcg@10']:.4f}"
        + (
            "; a corner of the grid, which was not widened"
            if best["regParam"] in (GRID_REG[0], GRID_REG[-1])
            or best["alpha"] in (GRID_ALPHA[0], GRID_ALPHA[-1])
            else ""
        )
        + "); all: "
        + ", ".join(
            f"{s['regParam']}/{s['alpha']:g}: {s['validation_ndcg@10']:.4f}"
            for s in d["validation_search"]
        )
        + ".",
        "",
        f"Verdict: {verdict(d)}",
        "",
    ]
    mapped = next(r for r in d["rows"] if r["engine"] == "spark mapped")
    if mapped["meets_floor"]:
        return "\n".join(lines)
    lines += [
        "Why the mapped row falls short (a reading of the two objectives; the regParam search "
        "above is the only experiment behind it): implicit regularizes every user and item by the same "
        "reg, MLlib by regParam x its number of pairs, so at the mapped regParam popular items "
        "and heavy users are shrunk several times harder than implicit shrinks them and rare "
        "ones less; the objectives differ, not the solver (tests/spark/test_jobs.py checks that "
        "MLlib's user factors solve implicit's equations with regParam x n_u). A lower regParam "
        "with a lower alpha, chosen on validation, closes the gap on test (the tuned row); "
        "`serendip fit --engine spark` takes MLlib's regParam directly as the Spark-only "
        "parameter `mllib_reg_param`.",
        "",
    ]
    return "\n".join(lines)


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    d = json.loads(path.read_text())
    table = ["| engine | NDCG@10 | 95% CI | vs local | fit s |", "|---|---:|---|---:|---:|"]
    for r in d["rows"]:
        rel = f"{r['relative']:+.1%}" if "relative" in r else ""
        table.append(
            f"| {r['engine']} | {r['ndcg@10']:.4f} | [{r['ci_low']:.4f}, {r['ci_high']:.4f}] | "
            f"{rel} | {r['fit_s']:.1f} |"
        )
    mapped = next(r for r in d["rows"] if r["engine"] == "spark mapped")
    short = f"mapped {mapped['relative']:+.1%} vs local"
    return table, verdict(d), short


if __name__ == "__main__":
    main()
