"""The production pipeline against the best single model of the zoo (issue 5).

For each dataset and its protocol -- MovieLens 100K temporal (last 20% of interactions by time),
Last.fm 2K random (per-user 80/20, seed 42, users with < 5 interactions kept in train) and the
synthetic `small` platform temporal -- this script:

1. fits the single-model candidates (ease, ials, item-knn, rp3beta; parameters from
   `benchmarks/model_params.json` where tuned there, else defaults) on a validation split carved
   from train with the same protocol, and picks the best by validation NDCG@10; that model
   becomes the pipeline's collaborative source. The number of label windows of the ranker
   (`ranker.n_windows`, 1 or 3) and the re-ranking knobs (`mmr_lambda`, `oon_target`) are
   chosen on the same validation split (rule in the JSON: best NDCG@10 among the settings that
   keep coverage, novelty and, on social data, 1.5x the out-of-network HitRate of the best
   single model). Test data is never used for a choice.
2. fits every candidate and the pipeline on train and evaluates on test over full rankings
   (`evaluate_recommendations`): NDCG@10, catalog coverage, novelty, out-of-network HitRate@10
   (social datasets). The comparison row is the best single model *on test* (the strictest
   baseline for the pipeline).
3. on the synthetic platform also: the cold-item protocol (newest 10% of items held out
   entirely; NDCG@10 of the pipeline vs popularity) and one-user latency (in-process
   `recommend([user], 10)` after a warm-up; p50/p99 over random users).

Writes `benchmarks/results/pipeline.json` and `pipeline.md` from the run (datasets run earlier
and not named again keep their stored rows).

    python benchmarks/bench_pipeline.py --dataset ml-100k --dataset lastfm-2k --dataset small
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from serendip.data.dataset import Dataset
from serendip.errors import SerendipError
from serendip.evaluation import (
    Split,
    cold_item_split,
    evaluate_recommendations,
    random_split,
    temporal_split,
)
from serendip.models.registry import get_model_class
from serendip.pipeline.config import PipelineConfig
from serendip.pipeline.recommender import PipelineRecommender

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))
PARAMS_FILE = ROOT / "model_params.json"
RESULTS_DIR = ROOT / "results"
CANDIDATES = ("ease", "ials", "item-knn", "rp3beta")
N_WINDOWS = (1, 3)
#: (mmr_lambda, oon_target) settings tried on validation (oon targets on social data only).
RERANK_GRID = ((1.0, None), (0.85, None), (0.6, None), (0.85, 0.3), (0.85, 0.5))
K = 10
FLOORS = {"ndcg_gain": 0.03, "oon_ratio": 1.5, "cold_ratio": 2.0, "p99_ms": 30.0}


def _load(name: str, platform_dir: Path) -> Dataset:
    if name == "ml-100k":
        from serendip.data.loaders import load_movielens

        return load_movielens(SHARED / "ml-100k")
    if name == "lastfm-2k":
        from serendip.data.loaders import load_lastfm

        return load_lastfm(SHARED / "lastfm-2k")
    if name == "small":
        from serendip.data.loaders.platform import load_platform

        if not (platform_dir / "manifest.json").is_file():
            from serendip.data.synthetic import generate_platform

            generate_platform("small", seed=42, out=platform_dir)
        return load_platform(platform_dir)
    raise SystemExit(f"unknown dataset {name}")


def _split(name: str, ds: Dataset) -> Split:
    if name == "lastfm-2k":
        return random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    return temporal_split(ds, test_fraction=0.2)


def _params(name: str) -> dict[str, dict[str, Any]]:
    if PARAMS_FILE.exists():
        return dict(json.loads(PARAMS_FILE.read_text()).get(name, {}))
    return {}


def _test_users(split: Split) -> np.ndarray:
    return split.test.users.lookup(np.unique(split.test.interactions.user))


def _evaluate(model: Any, split: Split) -> dict[str, Any]:
    users = _test_users(split)
    t0 = time.perf_counter()
    recs = model.recommend(users, K)
    rec_s = time.perf_counter() - t0
    m = evaluate_recommendations(recs, split.train, split.test, k=K).metrics
    return {
        "ndcg@10": m["ndcg@10"],
        "recall@10": m.get("recall@10"),
        "coverage@10": m.get("coverage@10"),
        "novelty@10": m.get("novelty@10"),
        "oon_hit_rate@10": m.get("oon_hit_rate@10"),
        "oon_share@10": m.get("oon_share@10"),
        "recommend_ms_per_user": 1000 * rec_s / max(len(users), 1),
    }


def _fit(name: str, params: dict[str, Any], train: Dataset) -> tuple[Any, float]:
    t0 = time.perf_counter()
    model = get_model_class(name)(params).fit(train)
    return model, time.perf_counter() - t0


def _pipeline_params(collab: str, collab_params: dict[str, Any], n_windows: int) -> dict:
    return {
        "sources.collaborative.params": {"model": collab, "params": collab_params},
        "ranker.n_windows": n_windows,
    }


def _set_rerank(model: PipelineRecommender, mmr: float, oon: float | None) -> None:
    """Re-ranking knobs act at request time: change them on the fitted model (no refit)."""
    cfg = model.config
    assert isinstance(cfg, PipelineConfig)
    rerank = cfg.rerank.model_copy(update={"mmr_lambda": mmr, "oon_target": oon})
    model.config = cfg.model_copy(update={"rerank": rerank})


def _meets(m: dict[str, Any], ref: dict[str, Any], social: bool) -> bool:
    ok = (m["coverage@10"] or 0) >= (ref["coverage@10"] or 0) and (m["novelty@10"] or 0) >= (
        ref["novelty@10"] or 0
    )
    if social:
        ok &= (m["oon_hit_rate@10"] or 0) >= 1.5 * (ref["oon_hit_rate@10"] or 0)
    return bool(ok)


def run_dataset(name: str, platform_dir: Path) -> dict[str, Any]:
    ds = _load(name, platform_dir)
    split = _split(name, ds)
    val = _split(name, split.train)
    tuned = _params(name)
    out: dict[str, Any] = {
        "dataset": name,
        "protocol": "random 80/20 per user" if name == "lastfm-2k" else "temporal 80/20",
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_interactions": ds.n_interactions,
        "n_test_users": len(_test_users(split)),
        "singles": [],
        "validation": {},
    }
    # 1. choices on validation
    val_scores: dict[str, dict[str, Any]] = {}
    for cand in CANDIDATES:
        if name == "small" and cand == "ease":
            continue  # a dense 20k x 20k item matrix: beyond this machine's shared memory
        try:
            model, _ = _fit(cand, tuned.get(cand, {}), val.train)
        except SerendipError as exc:
            print(f"{name:10s} {cand:10s} skipped: {exc}", flush=True)
            continue
        val_scores[cand] = _evaluate(model, val)
        print(f"{name:10s} validation {cand:10s} ndcg@10={val_scores[cand]['ndcg@10']:.4f}",
              flush=True)  # fmt: skip
    collab = max(val_scores, key=lambda c: val_scores[c]["ndcg@10"])
    ref = val_scores[collab]
    social = ref.get("oon_hit_rate@10") is not None
    grid = []
    for n_windows in N_WINDOWS:
        params = _pipeline_params(collab, tuned.get(collab, {}), n_windows)
        model, _ = _fit("pipeline", params, val.train)
        for mmr, oon in RERANK_GRID:
            if oon is not None and not social:
                continue
            _set_rerank(model, mmr, oon)
            m = _evaluate(model, val)
            feasible = _meets(m, ref, social)
            grid.append({"n_windows": n_windows, "mmr_lambda": mmr, "oon_target": oon,
                         "feasible": feasible, **m})  # fmt: skip
            print(f"{name:10s} validation pipeline n_windows={n_windows} mmr={mmr} oon={oon} "
                  f"ndcg@10={m['ndcg@10']:.4f} feasible={feasible}", flush=True)  # fmt: skip
    pool = [g for g in grid if g["feasible"]] or grid
    choice = max(pool, key=lambda g: g["ndcg@10"])
    out["validation"] = {
        "singles": val_scores,
        "collaborative_source": collab,
        "grid": grid,
        "choice": {k: choice[k] for k in ("n_windows", "mmr_lambda", "oon_target")},
        "choice_rule": "best validation NDCG@10 among settings whose validation coverage, "
        "novelty (and on social data out-of-network HitRate >= 1.5x) match the best single "
        "model's; the best NDCG@10 overall when none does",
    }
    # 2. test
    for cand in val_scores:
        model, fit_s = _fit(cand, tuned.get(cand, {}), split.train)
        row = {
            "model": cand,
            "params": model.get_params(),
            "fit_s": fit_s,
            **_evaluate(model, split),
        }
        out["singles"].append(row)
        print(f"{name:10s} test {cand:10s} ndcg@10={row['ndcg@10']:.4f}", flush=True)
    params = _pipeline_params(collab, tuned.get(collab, {}), choice["n_windows"])
    pipe, fit_s = _fit("pipeline", params, split.train)
    _set_rerank(pipe, choice["mmr_lambda"], choice["oon_target"])
    params = {**params, "rerank.mmr_lambda": choice["mmr_lambda"],
              "rerank.oon_target": choice["oon_target"]}  # fmt: skip
    out["pipeline"] = {
        "params": params,
        "fit_s": fit_s,
        "ranker": pipe.report_.to_dict(),
        "top_features": dict(sorted(pipe.report_.importance.items(), key=lambda kv: -kv[1])[:8]),
        **_evaluate(pipe, split),
    }
    print(f"{name:10s} test pipeline   ndcg@10={out['pipeline']['ndcg@10']:.4f}", flush=True)
    best = max(out["singles"], key=lambda r: r["ndcg@10"])
    out["best_single"] = best["model"]
    if name == "small":
        out["latency"] = _latency(pipe, split)
        print(f"{name:10s} latency {out['latency']}", flush=True)
        out["cold_items"] = _cold_items(ds, params)
        print(f"{name:10s} cold items {out['cold_items']}", flush=True)
    return out


def _latency(model: PipelineRecommender, split: Split, n: int = 300) -> dict[str, float]:
    rng = np.random.default_rng(0)
    users = rng.choice(split.train.users.ids, size=n, replace=True)
    for u in users[:20]:
        model.recommend([u], K)
    times = []
    for u in users:
        t0 = time.perf_counter()
        model.recommend([u], K)
        times.append(1000 * (time.perf_counter() - t0))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        model.save(Path(d) / "m")
        save_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (Path(d) / "m").iterdir()) / 2**20
    return {
        "n_requests": n,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "save_s": save_s,
        "artifact_mb": size,
        "load_average_1min": os.getloadavg()[0],
    }


def _cold_items(ds: Dataset, params: dict[str, Any]) -> dict[str, Any]:
    split = cold_item_split(ds, item_fraction=0.1, by="created_at")
    pop, _ = _fit("popularity", {}, split.train)
    pipe, _ = _fit("pipeline", params, split.train)
    return {
        "n_cold_items": int(split.params.get("n_cold_items", 0)),
        "n_test_users": len(_test_users(split)),
        "popularity_ndcg@10": _evaluate(pop, split)["ndcg@10"],
        "pipeline_ndcg@10": _evaluate(pipe, split)["ndcg@10"],
    }


# ----------------------------------------------------------------------------- report
def _fmt(v: Any, nd: int = 4) -> str:
    return "–" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _verdicts(res: dict[str, Any]) -> list[str]:
    best = next(r for r in res["singles"] if r["model"] == res["best_single"])
    p = res["pipeline"]
    gain = p["ndcg@10"] / best["ndcg@10"] - 1 if best["ndcg@10"] else float("nan")
    lines = [
        f"NDCG@10 {p['ndcg@10']:.4f} vs {best['model']} {best['ndcg@10']:.4f} "
        f"({gain:+.1%}; floor +3%: {'met' if gain >= FLOORS['ndcg_gain'] else 'MISSED'})",
        f"coverage {_fmt(p['coverage@10'])} vs {_fmt(best['coverage@10'])} "
        f"({'met' if (p['coverage@10'] or 0) >= (best['coverage@10'] or 0) else 'MISSED'}), "
        f"novelty {_fmt(p['novelty@10'], 2)} vs {_fmt(best['novelty@10'], 2)} "
        f"({'met' if (p['novelty@10'] or 0) >= (best['novelty@10'] or 0) else 'MISSED'})",
    ]
    if p.get("oon_hit_rate@10") is not None and best.get("oon_hit_rate@10"):
        ratio = p["oon_hit_rate@10"] / best["oon_hit_rate@10"]
        lines.append(
            f"out-of-network HitRate@10 {p['oon_hit_rate@10']:.4f} vs "
            f"{best['oon_hit_rate@10']:.4f} ({ratio:.2f}x; floor 1.5x: "
            f"{'met' if ratio >= FLOORS['oon_ratio'] else 'MISSED'})"
        )
    if "cold_items" in res:
        c = res["cold_items"]
        ratio = c["pipeline_ndcg@10"] / c["popularity_ndcg@10"] if c["popularity_ndcg@10"] else None
        ok = c["pipeline_ndcg@10"] >= FLOORS["cold_ratio"] * c["popularity_ndcg@10"]
        lines.append(
            f"cold items NDCG@10 {c['pipeline_ndcg@10']:.4f} vs popularity "
            f"{c['popularity_ndcg@10']:.4f} ({'inf' if ratio is None else f'{ratio:.1f}'}x; "
            f"floor 2x: {'met' if ok else 'MISSED'})"
        )
    if "latency" in res:
        lat = res["latency"]
        load = lat.get("load_average_1min")
        lines.append(
            f"one-user latency p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
            f"(floor p99 < 30 ms: {'met' if lat['p99_ms'] < FLOORS['p99_ms'] else 'MISSED'}; "
            + ("machine load not recorded" if load is None else f"1-min load average {load:.1f}")
            + " on the 2 shared cores)"
        )
    return lines


def write_markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Production pipeline vs the best single model (issue 5)",
        "",
        f"- Command: `{results['command']}`; machine: {results['machine']}.",
        "- Protocols: ML100K temporal (last 20% by time), Last.fm 2K random 80/20 per user "
        "(seed 42), synthetic `small` (seed 42) temporal; NDCG@10 over the full catalog minus "
        "each user's training items, all test users. The pipeline's collaborative source, "
        "number of label windows and re-ranking knobs were chosen on a validation split carved "
        "from train (rule: `validation.choice_rule` in the JSON); the baseline row is the best "
        "single model on test. On the synthetic platform most test interactions are on items "
        "created after the cut (a feed), which models without item metadata cannot reach; the "
        "pipeline never shows an item created after the request time.",
        "",
    ]
    for name, res in results["datasets"].items():
        lines += [
            f"### {name} ({res['protocol']}; {res['n_users']} users, {res['n_items']} items, "
            f"{res['n_interactions']} interactions, {res['n_test_users']} test users)",
            "",
            "| model | NDCG@10 | coverage@10 | novelty@10 | OON HitRate@10 | fit s |",
            "|---|---|---|---|---|---|",
        ]
        rows = [*res["singles"], {"model": "**pipeline**", **res["pipeline"]}]
        for r in rows:
            lines.append(
                f"| {r['model']} | {_fmt(r['ndcg@10'])} | {_fmt(r['coverage@10'])} | "
                f"{_fmt(r['novelty@10'], 2)} | {_fmt(r.get('oon_hit_rate@10'))} | "
                f"{_fmt(r['fit_s'], 1)} |"
            )
        v = res["validation"]
        c = v["choice"]
        lines += [
            "",
            f"Pipeline: collaborative source `{v['collaborative_source']}`, "
            f"n_windows {c['n_windows']}, mmr_lambda {c['mmr_lambda']}, oon_target "
            f"{c['oon_target']} (chosen on validation); ranker best iteration "
            f"{res['pipeline']['ranker']['best_iteration']}, "
            f"{res['pipeline']['ranker']['n_train_groups']} training groups.",
            "",
            *[f"- {line}" for line in _verdicts(res)],
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", choices=["ml-100k", "lastfm-2k", "small"])
    ap.add_argument(
        "--platform-dir", type=Path, default=Path(tempfile.gettempdir()) / "serendip-small-42"
    )
    ap.add_argument(
        "--latency-only",
        action="store_true",
        help="re-measure only the one-user latency on `small` (the stored pipeline parameters)",
    )
    args = ap.parse_args()
    names = args.dataset or ["ml-100k", "lastfm-2k", "small"]
    json_path = RESULTS_DIR / "pipeline.json"
    if args.latency_only:
        stored = json.loads(json_path.read_text())
        res = stored["datasets"]["small"]
        ds = _load("small", args.platform_dir)
        split = _split("small", ds)
        params = dict(res["pipeline"]["params"])
        mmr, oon = params.pop("rerank.mmr_lambda"), params.pop("rerank.oon_target")
        pipe, _ = _fit("pipeline", params, split.train)
        _set_rerank(pipe, mmr, oon)
        res["latency"] = _latency(pipe, split)
        print(res["latency"], flush=True)
        json_path.write_text(json.dumps(stored, indent=2, default=float) + "\n")
        (RESULTS_DIR / "pipeline.md").write_text(write_markdown(stored))
        return
    for name in names:
        result = run_dataset(name, args.platform_dir)
        # re-read before writing: rows of datasets not run now stay as stored
        stored = json.loads(json_path.read_text()) if json_path.exists() else {"datasets": {}}
        stored["datasets"][name] = result
        stored["command"] = "python benchmarks/bench_pipeline.py " + " ".join(
            f"--dataset {n}" for n in stored["datasets"]
        )
        stored["machine"] = (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
            f"Python {sys.version.split()[0]}"
        )
        RESULTS_DIR.mkdir(exist_ok=True)
        json_path.write_text(json.dumps(stored, indent=2, default=float) + "\n")
        (RESULTS_DIR / "pipeline.md").write_text(write_markdown(stored))
    print((RESULTS_DIR / "pipeline.md").read_text())


if __name__ == "__main__":
    main()
