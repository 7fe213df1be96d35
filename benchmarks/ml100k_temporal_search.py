"""ML100K temporal: the pipeline against trending on validation folds carved from train (issue 5).

Validation only: the test split's train part is the only data used (the test window is never
evaluated). Fold schemes:

- "nested": the bench's folds (temporal 80/20 of train, then of that fold's train, ...);
- "matched": windows holding as many interactions as the real test window (25% of train = 20%
  of the full data), stepping back by `--step` of train: fold j trains on what precedes
  quantile 1 - j*step - 0.25 of train's interaction times and is tested on the window up to
  quantile 1 - j*step (the newest fold's window ends where train ends, as the test's does).

For every pipeline variant (ranker / source settings; `VARIANTS`) and re-ranking setting the
script reports NDCG@10 per fold, its mean, and the paired per-user difference against trending
(mean over (fold, user) pairs and its standard error), plus coverage and novelty.

    python benchmarks/ml100k_temporal_search.py --scheme matched --folds 5 --variant base
    python benchmarks/ml100k_temporal_search.py --bench-choice  # the bench's validation choice
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import (
    SHARED,
    K,
    _pipeline_params,
    _ranked,
    _set_rerank,
    _test_users,
)
from serendip.data.dataset import Dataset
from serendip.evaluation import Split, evaluate_recommendations, temporal_split
from serendip.models.base import RecLists
from serendip.models.registry import get_model_class
from serendip.pipeline.recommender import PipelineRecommender

RESULTS = Path(__file__).resolve().parent / "results" / "ml100k-temporal-search.json"

#: Pipeline variants: overrides of the bench's ML100K pipeline parameters (collaborative: --collab).
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "w1": {"ranker.n_windows": 1},
    "w4": {"ranker.n_windows": 4, "ranker.label_fraction": 0.15},
    "w6": {"ranker.n_windows": 6, "ranker.label_fraction": 0.1},
    "peruser": {"ranker.label_split": "per-user"},
    "leaves7": {"ranker.num_leaves": 7, "ranker.min_child_samples": 50},
    "lr02": {"ranker.learning_rate": 0.02},
    "trend60": {"sources.trending.quota": 60},
    "trend7d": {"sources.trending.params": {"half_life_days": 7.0}},
    "trend7d60": {
        "sources.trending.params": {"half_life_days": 7.0},
        "sources.trending.quota": 60,
    },
    **{f"prior{w:g}": {"ranker.prior_weight": w} for w in (0.5, 1.0, 1.5, 2.0, 4.0)},
    "prior1w4": {"ranker.prior_weight": 1.0, "ranker.n_windows": 4, "ranker.label_fraction": 0.15},
    "prior1l7": {
        "ranker.prior_weight": 1.0,
        "ranker.num_leaves": 7,
        "ranker.min_child_samples": 50,
    },
    "prior1lr02": {"ranker.prior_weight": 1.0, "ranker.learning_rate": 0.02},
    "w8": {"ranker.n_windows": 8, "ranker.label_fraction": 0.1},
    **{
        f"prior{w:g}w{n}": {
            "ranker.prior_weight": w,
            "ranker.n_windows": n,
            "ranker.label_fraction": 0.1,
        }
        for w in (0.5, 1.0)
        for n in (6, 8)
    },
    "prior1t7d60": {
        "ranker.prior_weight": 1.0,
        "sources.trending.params": {"half_life_days": 7.0},
        "sources.trending.quota": 60,
    },
}
#: Re-ranking settings (no refit): plain relevance, and the bench's last ML100K choice.
RERANKS: dict[str, dict[str, Any]] = {
    "plain": {
        "mmr_lambda": 1.0,
        "popularity_penalty": 0.0,
        "exposure_penalty": 0.0,
        "pool": 100,
        "exposure_free_top": 0,
    },
    "pop.1": {
        "mmr_lambda": 1.0,
        "popularity_penalty": 0.1,
        "exposure_penalty": 0.0,
        "pool": 100,
        "exposure_free_top": 0,
    },
    "expo.1f5": {
        "mmr_lambda": 1.0,
        "popularity_penalty": 0.0,
        "exposure_penalty": 0.1,
        "pool": 100,
        "exposure_free_top": 5,
    },
    "expo.3": {
        "mmr_lambda": 1.0,
        "popularity_penalty": 0.0,
        "exposure_penalty": 0.3,
        "pool": 300,
        "exposure_free_top": 5,
    },
}
SINGLES = ("trending", "ials", "popularity")


def _window_split(train: Dataset, lo_q: float, hi_q: float) -> Split:
    """Temporal split of `train` at its interaction-time quantile lo_q, the test window ending
    before quantile hi_q (hi_q >= 1: no end)."""
    ts = train.interactions.timestamp
    ordered = np.sort(ts[~np.isnan(ts)])
    cut = float(ordered[min(int(np.ceil(lo_q * len(ordered))), len(ordered) - 1)])
    if hi_q < 1.0:
        upper = float(ordered[min(int(np.ceil(hi_q * len(ordered))), len(ordered) - 1)])
        train = train.filter_interactions(~(ts >= upper))
    return temporal_split(train, cut=cut)


def make_folds(train: Dataset, scheme: str, n: int, step: float) -> list[Split]:
    if scheme == "nested":
        folds = [temporal_split(train, test_fraction=0.2)]
        while len(folds) < n:
            folds.append(temporal_split(folds[-1].train, test_fraction=0.2))
        return folds
    if scheme == "matched":
        window = 0.25  # the test window's share of train's interactions
        return [_window_split(train, 1 - j * step - window, 1 - j * step) for j in range(n)]
    raise SystemExit(f"unknown scheme {scheme}")


def _per_user(recs: Any, fold: Split) -> dict[str, Any]:
    res = evaluate_recommendations(recs, fold.train, fold.test, k=K, keep_per_user=True)
    assert res.per_user is not None
    rows = res.per_user.sort_values("user", kind="stable")
    return {
        "users": rows["user"].astype(str).to_numpy(),
        "ndcg": rows["ndcg@10"].to_numpy(np.float64),
        "coverage": float(res.metrics["coverage@10"]),
        "novelty": float(res.metrics["novelty@10"]),
    }


def _single(name: str, fold: Split) -> dict[str, Any]:
    model = get_model_class(name)({}).fit(fold.train)
    return _per_user(model.recommend(_test_users(fold), K), fold)


def _pipeline_lists(
    model: PipelineRecommender, ranked: list[Any], fold: Split, knobs: dict[str, Any]
) -> dict[str, Any]:
    _set_rerank(model, **knobs)
    users = np.array([c.user for c, _, _ in ranked], dtype=object)
    items = np.full((len(users), K), -1, np.int64)
    scores = np.full((len(users), K), -np.inf, np.float32)
    exposure = model._exposure_counter()
    for j, (ctx, cand, sc) in enumerate(ranked):
        chosen, shown = model._final_list(ctx, cand, sc, K, None, True, exposure)
        items[j, : len(chosen)] = chosen
        scores[j, : len(chosen)] = shown
    return _per_user(RecLists(users, items, scores, model.items_), fold)


def summarize(per_fold: list[dict[str, Any]], ref: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold means, and the paired per-user difference against `ref` over all (fold, user)."""
    diffs, fold_gain = [], []
    for r, b in zip(per_fold, ref, strict=True):
        assert (r["users"] == b["users"]).all()
        diffs.append(r["ndcg"] - b["ndcg"])
        fold_gain.append(float(r["ndcg"].mean() / b["ndcg"].mean() - 1))
    d = np.concatenate(diffs)
    return {
        "ndcg_folds": [round(float(r["ndcg"].mean()), 4) for r in per_fold],
        "ndcg": float(np.mean([r["ndcg"].mean() for r in per_fold])),
        "coverage": float(np.mean([r["coverage"] for r in per_fold])),
        "novelty": float(np.mean([r["novelty"] for r in per_fold])),
        "diff": float(d.mean()),
        "diff_se": float(d.std(ddof=1) / np.sqrt(len(d))),
        "gain_folds": [round(g, 3) for g in fold_gain],
        "n_pairs": len(d),
    }


class _NoTest(Exception):
    pass


def bench_choice() -> dict[str, Any]:
    """bench_pipeline's ML100K validation and choice, stopped before its test part evaluates
    anything (its `_evaluate` raises at once): the settings it would fit on train."""
    import bench_pipeline as bench

    rows: list[dict[str, Any]] = []
    key = bench._choice_key

    def record(g: dict[str, Any]) -> Any:
        rows.append(g)
        return key(g)

    def no_test(*_: Any, **__: Any) -> Any:
        raise _NoTest

    bench._choice_key, bench._evaluate = record, no_test  # type: ignore[assignment]
    try:
        bench.run_dataset("ml-100k", Path("/nonexistent"))
    except _NoTest:
        pass
    finally:
        bench._choice_key = key
    best = max(rows, key=key)
    keys = ("second", "label_split", "ranker", *bench.KNOBS, "ndcg@10", "coverage@10",
            "novelty@10", "floors_met")  # fmt: skip
    return {k: best[k] for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scheme", default="matched", choices=["nested", "matched"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--step", type=float, default=0.0625)
    ap.add_argument("--variant", action="append", help="names of VARIANTS (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="pipeline seed")
    ap.add_argument("--tag", default="", help="suffix of the stored entry's key")
    ap.add_argument("--collab", default="ials", help="the collaborative source's model")
    ap.add_argument(
        "--bench-choice",
        action="store_true",
        help="only run bench_pipeline's ML100K validation and print its choice (no test)",
    )
    args = ap.parse_args()
    if args.bench_choice:
        print("bench_pipeline ML100K validation choice:", json.dumps(bench_choice(), default=str))
        return
    from serendip.data.loaders import load_movielens

    ds = load_movielens(SHARED / "ml-100k")
    split = temporal_split(ds, test_fraction=0.2)  # only its train is used below
    folds = make_folds(split.train, args.scheme, args.folds, args.step)
    for j, f in enumerate(folds):
        print(f"fold {j}: train {f.train.n_interactions} test {f.test.n_interactions} "
              f"users {len(_test_users(f))}", flush=True)  # fmt: skip
    singles = {name: [_single(name, f) for f in folds] for name in SINGLES}
    ref = singles["trending"]
    out: dict[str, Any] = {"scheme": args.scheme, "folds": args.folds, "step": args.step,
                           "seed": args.seed, "results": {}}  # fmt: skip
    for name, per in singles.items():
        out["results"][name] = summarize(per, ref)
        s = out["results"][name]
        print(f"{name:24s} ndcg {s['ndcg']:.4f} folds {s['ndcg_folds']} cov {s['coverage']:.3f} "
              f"nov {s['novelty']:.2f}", flush=True)  # fmt: skip
    for v in args.variant or list(VARIANTS):
        params = {**_pipeline_params(args.collab, {}), **VARIANTS[v], "seed": args.seed}
        t0 = time.perf_counter()
        fitted = []
        for f in folds:
            model = get_model_class("pipeline")(params).fit(f.train)
            assert isinstance(model, PipelineRecommender)
            fitted.append((model, _ranked(model, _test_users(f)), f))
        groups = [m.report_.n_train_groups for m, _, _ in fitted]
        for rname, knobs in RERANKS.items():
            per = [_pipeline_lists(m, r, f, knobs) for m, r, f in fitted]
            s = summarize(per, ref)
            s["groups"] = groups
            out["results"][f"{v}/{rname}"] = s
            print(f"{v + '/' + rname:24s} ndcg {s['ndcg']:.4f} folds {s['ndcg_folds']} "
                  f"vs trending {s['diff']:+.4f} +- {s['diff_se']:.4f} gains {s['gain_folds']} "
                  f"cov {s['coverage']:.3f} nov {s['novelty']:.2f} groups {groups} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    collab = "" if args.collab == "ials" else f"-{args.collab}"
    key = f"{args.scheme}-{args.folds}-{args.step}-seed{args.seed}{collab}{args.tag}"
    prev = stored.get(key, {"results": {}})
    prev["results"].update(out["results"])
    out["results"] = prev["results"]
    stored[key] = out
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
