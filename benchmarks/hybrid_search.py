"""Search the weighted hybrid's members, member hyperparameters, normalisation and weights on
validation splits carved from train (never on test), for one dataset.

Each candidate member configuration (`CANDIDATES`) is fitted once per validation carving (seeds
of `--seeds`, stacked) on that carving's training part, and its scores for the validation users
are cached (`--cache`), so every blend only re-weights arrays; optuna searches the weights.
Every member and blend tried is recorded with its validation NDCG@10 in
`benchmarks/results/hybrid-search-<dataset>.json`. `--test LABEL...` refits the named blends on
the full train and evaluates them on test, once each, into `...-tests.json`; `--report` writes
the Markdown summary (`results/hybrid-search-<dataset>.md`, part of RESULTS.md).

    python benchmarks/hybrid_search.py --dataset ml-100k --seeds 42,43,44,45,46 \
        --members ease@l200d0.7,ease@350,ials,ials@32,puresvd,rp3beta,item-knn,user-knn,nmf \
        --sets no-vae,every-non-vae --methods minmax,zscore --trials 300 --tag edlae
    python benchmarks/hybrid_search.py --dataset ml-100k --test "LABEL"
    python benchmarks/hybrid_search.py --dataset ml-100k --report
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_models import LOADERS, RESULTS_DIR, SHARED
from serendip.evaluation import evaluate_recommendations, random_split, validation_split
from serendip.evaluation.metrics import hit_matrix, ndcg
from serendip.models.base import top_k
from serendip.models.hybrid import WeightedHybrid
from serendip.models.hybrid._members import normalise
from serendip.models.registry import create_model

#: Candidate member configurations: key -> (registry name, params). Keys with "@" are variants.
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "ease@200": ("ease", {"l2": 200.0}),
    "ease@350": ("ease", {"l2": 350.0}),
    "ease@500": ("ease", {"l2": 500.0}),
    "ease@800": ("ease", {"l2": 800.0}),
    "rp3beta": ("rp3beta", {}),
    "rp3beta@a1b6": ("rp3beta", {"alpha": 1.0, "beta": 0.6, "k": 200}),
    "rp3beta@a6b3": ("rp3beta", {"alpha": 0.6, "beta": 0.3, "k": 200}),
    "item-knn": ("item-knn", {}),
    "user-knn": ("user-knn", {}),
    "ials": ("ials", {}),
    "ials@64": ("ials", {"factors": 64, "regularization": 60.0, "alpha": 7.0}),
    "ials@32": ("ials", {"factors": 32, "regularization": 45.0, "alpha": 7.0}),
    "ials@16": ("ials", {"factors": 16, "regularization": 30.0, "alpha": 7.0}),
    "ials@24r20": ("ials", {"factors": 24, "regularization": 20.0, "alpha": 4.0}),
    "puresvd": ("puresvd", {}),
    "nmf": ("nmf", {}),
    "multvae": ("multvae", {"device": "cpu"}),
}

# EDLAE (EASE with emphasised dropout, Steck 2020): a grid over (l2, dropout)
CANDIDATES.update(
    {
        f"ease@l{l2:g}d{p:g}": ("ease", {"l2": float(l2), "dropout": float(p)})
        for l2 in (50, 100, 200, 350)
        for p in (0.1, 0.25, 0.4, 0.55)
    }
)
CANDIDATES.update(
    {
        f"ease@l{l2:g}d{p:g}": ("ease", {"l2": float(l2), "dropout": float(p)})
        for l2 in (50, 100, 200, 350, 500)
        for p in (0.7, 0.8, 0.9)
    }
)


def rank_normalise(scores: np.ndarray, exclude: Any) -> np.ndarray:
    """Per-row reciprocal-rank fusion 1 / (60 + rank) over the unseen items (an experiment;
    not a model option)."""
    s = np.asarray(scores, dtype=np.float64).copy()
    r, c = exclude.nonzero()
    s[r, c] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(s.shape[1])[None, :], axis=1)
    return 1.0 / (60.0 + ranks)  # reciprocal rank fusion's shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="ml-100k", choices=sorted(LOADERS))
    ap.add_argument("--members", default=",".join(CANDIDATES))
    ap.add_argument("--trials", type=int, default=150)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/serendip-hybrid-search"))
    ap.add_argument("--test", nargs="*", default=[])
    ap.add_argument("--seeds", default="42", help="validation split seeds, stacked")
    ap.add_argument("--sets", default="", help="comma-separated blend set names (default all)")
    ap.add_argument("--methods", default="minmax,zscore,rank")
    ap.add_argument("--rescore", nargs="*", default=[], help="blend labels to re-evaluate")
    ap.add_argument("--report", action="store_true", help="only write the Markdown summary")
    ap.add_argument("--tag", default="", help="appended to the blend labels of this run")
    ap.add_argument("--fit-only", action="store_true", help="fit and cache the members, no search")
    args = ap.parse_args()
    out = RESULTS_DIR / f"hybrid-search-{args.dataset}.json"
    log: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    log.setdefault("members", {})
    log.setdefault("blends", {})
    if args.report:
        print(write_report(args.dataset, log))
        return
    ds = LOADERS[args.dataset](SHARED / args.dataset)
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    if args.test:
        # test results go to their own file, so a search running meanwhile cannot drop them
        tests_path = RESULTS_DIR / f"hybrid-search-{args.dataset}-tests.json"
        tests = json.loads(tests_path.read_text()) if tests_path.exists() else {}
        for name in args.test:
            tests[name] = run_test(name, log, split)
            tests_path.write_text(json.dumps(tests, indent=2) + "\n")
        return
    # one or more validation splits (seeds), stacked: each user counts once per split, which
    # averages the weights' noise over several carvings of the same training data
    seeds = [int(x) for x in args.seeds.split(",")]
    vals = [
        validation_split(split.train, "random", test_fraction=0.2, seed=sd, min_interactions=5)
        for sd in seeds
    ]
    truths, seens, user_sets = [], [], []
    for v in vals:
        truth = v.test.seen()
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        user_sets.append(users)
        truths.append(truth[users])
        seens.append(v.train.seen()[users])
    truth_rows = sp.vstack(truths).tocsr()
    seen = sp.vstack(seens).tocsr()
    n_truth = np.diff(truth_rows.indptr)
    args.cache.mkdir(parents=True, exist_ok=True)
    raw: dict[str, np.ndarray] = {}
    for key in args.members.split(","):
        name, params = CANDIDATES[key]
        blocks = []
        for sd, v, users in zip(seeds, vals, user_sets, strict=True):
            path = args.cache / f"{args.dataset}-{key}{'' if sd == 42 else f'-s{sd}'}.npy"
            if not path.exists():
                t0 = time.perf_counter()
                model = create_model(name, params).fit(v.train)
                np.save(path, np.asarray(model._score_warm(users), dtype=np.float32))
                print(f"fitted {key} (seed {sd}) in {time.perf_counter() - t0:.1f}s", flush=True)
            blocks.append(np.load(path))
        raw[key] = np.vstack(blocks)
    if args.fit_only:
        return
    r, c = seen.nonzero()

    def evaluate(total: Any) -> float:
        scores = np.asarray(total, dtype=np.float32).copy()
        scores[r, c] = -np.inf
        recs, _ = top_k(scores, 10)
        return float(ndcg(hit_matrix(recs, truth_rows), n_truth).mean())

    norm = {
        method: {
            k: (
                rank_normalise(v, seen) if method == "rank" else normalise(v, seen, method)  # type: ignore[arg-type]
            )
            for k, v in raw.items()
        }
        for method in ("minmax", "zscore", "rank")
    }
    if args.rescore:
        # re-evaluate recorded blends' weights on this run's validation carvings (comparable
        # numbers across blends searched on different seed sets; validation only)
        for label in args.rescore:
            b = log["blends"][label]
            parts = norm[b["normalization"]]
            value = evaluate(sum(float(w) * parts[k] for k, w in b["weights"].items()))
            b.setdefault("rescored", {})[args.seeds] = value
            print(f"rescore {label:50s} validation(seeds={args.seeds}) ndcg@10={value:.4f}")
        out.write_text(json.dumps(log, indent=2) + "\n")
        return
    member_val: dict[str, float] = {}
    for key in raw:
        val_ndcg = evaluate(raw[key])
        member_val[key] = val_ndcg
        log["members"][key + ("" if seeds == [42] else f"/seeds={args.seeds}")] = {
            "model": CANDIDATES[key][0],
            "params": CANDIDATES[key][1],
            "validation_ndcg@10": val_ndcg,
        }
        print(f"member {key:16s} validation ndcg@10={val_ndcg:.4f}", flush=True)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def search(keys: list[str], method: str, trials: int) -> tuple[dict[str, float], float]:
        parts = norm[method]
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=42)
        )
        study.enqueue_trial({k: 1.0 for k in keys})

        def objective(trial: Any) -> float:
            w = np.array([trial.suggest_float(k, 0.0, 1.0) for k in keys])
            if w.sum() <= 0:
                return 0.0
            w = w / w.sum()
            return evaluate(sum(float(wi) * parts[k] for k, wi in zip(keys, w, strict=True)))

        study.optimize(objective, n_trials=trials)
        w = np.array([study.best_params[k] for k in keys])
        w = w / w.sum()
        return {k: round(float(x), 4) for k, x in zip(keys, w, strict=True)}, study.best_value

    # member choice per family: the variant best alone on validation
    def best_of(prefix: str) -> str | None:
        found = [k for k in raw if k.split("@")[0] == prefix]
        return max(found, key=lambda k: member_val[k]) if found else None

    picks = {p: best_of(p) for p in {k.split("@")[0] for k in raw}}
    ease = picks.get("ease")
    sets: dict[str, list[Any]] = {
        "current-4": ["ease@500", "ials", "multvae", "rp3beta"],
        "ease+rp3": [ease, picks.get("rp3beta")],
        "ease+iknn": [ease, "item-knn"],
        "ease+ials": [ease, picks.get("ials")],
        "ease+vae": [ease, "multvae"],
        "ease+rp3+iknn": [ease, picks.get("rp3beta"), "item-knn"],
        "ease+rp3+vae": [ease, picks.get("rp3beta"), "multvae"],
        "ease+iknn+vae": [ease, "item-knn", "multvae"],
        "ease+ials+rp3+vae": [ease, picks.get("ials"), picks.get("rp3beta"), "multvae"],
        "ease+ials+rp3+iknn+vae": [
            ease,
            picks.get("ials"),
            picks.get("rp3beta"),
            "item-knn",
            "multvae",
        ],
        "all-best": [k for k in picks.values() if k],
        "ease+ials+rp3": [ease, picks.get("ials"), picks.get("rp3beta")],
        "ease+ials+svd": [ease, picks.get("ials"), "puresvd"],
        "ease+ials+svd+vae": [ease, picks.get("ials"), "puresvd", "multvae"],
        "no-vae": [k for k in picks.values() if k and k != "multvae"],
        "every-non-vae": [k for k in raw if k != "multvae"],
        "every": list(raw),
    }
    wanted = set(args.sets.split(",")) if args.sets else set(sets)
    for set_name, keys in sets.items():
        if set_name not in wanted or any(k is None or k not in raw for k in keys):
            continue
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            weights, value = search(list(dict.fromkeys(keys)), method, args.trials)
            label = f"{set_name}/{method}" + ("" if seeds == [42] else f"/seeds={args.seeds}")
            label += f"/{args.tag}" if args.tag else ""
            log["blends"][label] = {
                "members": {k: CANDIDATES[k][1] for k in weights},
                "member_models": {k: CANDIDATES[k][0] for k in weights},
                "normalization": method,
                "weights": weights,
                "validation_ndcg@10": value,
                "trials": args.trials,
                "validation_seeds": seeds,
            }
            print(
                f"blend {label:32s} validation ndcg@10={value:.4f} "
                f"({time.perf_counter() - t0:.0f}s) {weights}",
                flush=True,
            )
            out.write_text(json.dumps(log, indent=2) + "\n")
    out.write_text(json.dumps(log, indent=2) + "\n")


def write_report(dataset: str, log: dict[str, Any]) -> Path:
    """results/hybrid-search-<dataset>.md: every blend searched (validation NDCG@10) and every
    one evaluated on test, from the two JSON files this script writes."""
    tests_path = RESULTS_DIR / f"hybrid-search-{dataset}-tests.json"
    tests = json.loads(tests_path.read_text()) if tests_path.exists() else {}
    lines = [
        f"## Weighted-hybrid search on {dataset} (validation only; test once per final blend)",
        "",
        "- Command: `python benchmarks/hybrid_search.py --dataset "
        f"{dataset} [--seeds 42,43,44] [--members ...] [--sets ...]`, then "
        "`--test LABEL` for the chosen blends and `--report` for this table.",
        "- Validation: random 80/20 carvings of the training split (seeds listed; several seeds "
        "are stacked, each user counted once per carving). Validation NDCG@10 is lower than "
        "test NDCG@10 by construction: the held-out test items of each user are unknown while "
        "validating, so they count as misses. Numbers are comparable only within one seed set.",
        "- Weights: optuna TPE (seed 42) on cached member scores; labels are "
        "set/normalisation/seeds/tag (no seeds: seed 42 alone). The test column is "
        "filled only for the blends evaluated on test, each once.",
        "",
        "### Members alone (validation NDCG@10)",
        "",
        "| member | params | validation |",
        "|---|---|---:|",
    ]
    for key, m in log.get("members", {}).items():
        lines.append(f"| {key} | `{json.dumps(m['params'])}` | {m['validation_ndcg@10']:.4f} |")
    lines += [
        "",
        "### Blends (validation NDCG@10)",
        "",
        "| blend | weights | validation | test |",
        "|---|---|---:|---:|",
    ]
    for label, b in log.get("blends", {}).items():
        test = tests.get(label, {}).get("test_ndcg@10")
        w = ", ".join(f"{k} {v:.3f}" for k, v in b["weights"].items())
        lines.append(
            f"| {label} | {w} | {b['validation_ndcg@10']:.4f} | "
            f"{'' if test is None else f'{test:.4f}'} |"
        )
    out = RESULTS_DIR / f"hybrid-search-{dataset}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def hybrid_params(entry: dict[str, Any]) -> dict[str, Any]:
    """The WeightedHybrid config of a blend entry (member keys made registry keys)."""
    members, weights = {}, {}
    for key, params in entry["members"].items():
        model = entry["member_models"][key]
        label = key.split("@", 1)[1] if "@" in key else ""
        hkey = f"{model}@{label}" if label else model
        members[hkey] = params
        weights[hkey] = entry["weights"][key]
    return {"members": members, "weights": weights, "normalization": entry["normalization"]}


def run_test(name: str, log: dict[str, Any], split: Any) -> dict[str, Any]:
    """Refit one validated blend on the full train and evaluate it on test (once)."""
    entry = log["blends"][name]
    params = hybrid_params(entry)
    t0 = time.perf_counter()
    model = WeightedHybrid(params).fit(split.train)
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    result = evaluate_recommendations(model.recommend(users, 10), split.train, split.test, k=10)
    row = {
        "params": params,
        "validation_ndcg@10": entry["validation_ndcg@10"],
        "validation_seeds": entry.get("validation_seeds", [42]),
        "test_ndcg@10": result.metrics["ndcg@10"],
        "seconds": time.perf_counter() - t0,
    }
    print(f"test {name}: ndcg@10={row['test_ndcg@10']:.4f} params={params}", flush=True)
    return row


if __name__ == "__main__":
    main()
