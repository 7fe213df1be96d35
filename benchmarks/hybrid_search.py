"""Search the weighted hybrid's members, member hyperparameters, normalisation and weights on
validation splits carved from train (never on test), for one dataset.

Each candidate member configuration (`CANDIDATES`) is fitted once per validation carving (seeds
of `--seeds`, stacked) on that carving's training part, and its scores for the validation users
are cached (`--cache`), so every blend only re-weights arrays; optuna searches the weights.
Every member and blend tried is recorded with its validation NDCG@10 in
`benchmarks/results/hybrid-search-<dataset>.json`. `--test LABEL...` refits the named blends on
the full train and evaluates them on test, once each, into `...-tests.json`; `--report` writes
the Markdown summary (`results/hybrid-search-<dataset>.md`, part of RESULTS.md).

    # the blend chosen in round 2 (WeightedHybrid's default): tuned on 10% carvings 42-51,
    # checked on carvings 52-55 (holdout), then `--rescore LABEL...` on other carvings
    python benchmarks/hybrid_search.py --dataset ml-100k --val-fraction 0.1 \
        --seeds 42,43,44,45,46,47,48,49,50,51 --holdout-seeds 52,53,54,55 \
        --members ease@l200d0.7,ease@350,ials,ials@32,puresvd,rp3beta,item-knn,user-knn,nmf \
        --sets every-non-vae --methods rank,minmax --trials 200 --tag v1
    # per-user-activity weights (3 buckets) and rank constants are options too:
    #   --activity 0,3 --methods rank,borda,zscore --rank-constant 20
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
    # RecVAE's class defaults are bench_models' MovieLens tuning (12 trials, validation seed 42)
    "recvae": ("recvae", {"device": "cpu"}),
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

# iALS tuned harder (more factors need more regularisation): a grid over (factors, reg, alpha)
CANDIDATES.update(
    {
        f"ials@f{f}r{r:g}a{a:g}": (
            "ials",
            {"factors": f, "regularization": float(r), "alpha": float(a)},
        )
        for f in (48, 96, 192)
        for r in (30, 60, 120, 240)
        for a in (4, 7, 12)
    }
)
# more diverse members: wider factorizations and other neighbourhood similarities
CANDIDATES.update(
    {
        "puresvd@f64": ("puresvd", {"factors": 64}),
        "puresvd@f32p3": ("puresvd", {"factors": 32, "popularity_exponent": 0.3}),
        "item-knn@cos200": ("item-knn", {"similarity": "cosine", "k": 200, "shrink": 10.0}),
        "user-knn@cos100": ("user-knn", {"similarity": "cosine", "k": 100, "weighting": "none"}),
        "rp3beta@a1b3k100": ("rp3beta", {"alpha": 1.0, "beta": 0.3, "k": 100}),
    }
)
# User-EASE (EASE on the transposed matrix): the defaults and two neighbours of them
CANDIDATES.update(
    {
        "user-ease@l100d0.8": ("user-ease", {"l2": 100.0, "dropout": 0.8}),
        "user-ease@l200d0.7": ("user-ease", {"l2": 200.0, "dropout": 0.7}),
        "user-ease@l50d0.8": ("user-ease", {"l2": 50.0, "dropout": 0.8}),
        # what bench_models' tuning (20 trials, validation seed 42) chose: the class defaults
        "user-ease@l320d0.62": ("user-ease", {"l2": 320.0, "dropout": 0.62}),
    }
)

# Rating values as confidence (every rating is an interaction in the protocol; the values
# weigh the training matrix): members that disagree with the binary ones
CANDIDATES.update(
    {
        "ease@l200d0.7lin": ("ease", {"l2": 200.0, "dropout": 0.7, "confidence": "linear"}),
        "item-knn@lin": ("item-knn", {"confidence": "linear"}),
    }
)

#: A user's training history in a validation carving is about (1 - validation fraction) of the
#: same user's history in the full training split, so activity bounds found on validation are
#: scaled by 1 / that share when the blend is refitted on the full train (the same users fall in
#: each bucket); 0.8 for the default fraction 0.2.
VALIDATION_SHARE = 0.8


class Carvings:
    """Member scores of the validation users of one or more carvings (seeds), stacked."""

    def __init__(
        self,
        train: Any,
        seeds: list[int],
        members: list[str],
        cache: Path,
        dataset: str,
        fraction: float = 0.2,
    ):
        self.seeds = seeds
        self.fraction = fraction
        truths, seens = [], []
        blocks: dict[str, list[np.ndarray]] = {k: [] for k in members}
        for sd in seeds:
            v = validation_split(
                train, "random", test_fraction=fraction, seed=sd, min_interactions=5
            )
            truth = v.test.seen()
            users = np.flatnonzero(np.diff(truth.indptr) > 0)
            truths.append(truth[users])
            seens.append(v.train.seen()[users])
            for key in members:
                name, params = CANDIDATES[key]
                tag = ("" if sd == 42 else f"-s{sd}") + (
                    "" if fraction == 0.2 else f"-v{fraction:g}"
                )
                path = cache / f"{dataset}-{key}{tag}.npy"
                if not path.exists():
                    t0, c0 = time.perf_counter(), time.process_time()
                    model = create_model(name, params).fit(v.train)
                    np.save(path, np.asarray(model._score_warm(users), dtype=np.float32))
                    print(
                        f"fitted {key} (seed {sd}) in {time.perf_counter() - t0:.1f}s wall, "
                        f"{time.process_time() - c0:.1f}s CPU",
                        flush=True,
                    )
                blocks[key].append(np.load(path))
        self.raw = {k: np.vstack(b) for k, b in blocks.items()}
        self.truth = sp.vstack(truths).tocsr()
        self.seen = sp.vstack(seens).tocsr()
        self.n_truth = np.diff(self.truth.indptr)
        self.lengths = np.diff(self.seen.indptr)
        #: the carving (seed) each stacked row comes from
        self.row_seed = np.repeat(seeds, [t.shape[0] for t in truths])
        self._r, self._c = self.seen.nonzero()
        self._norm: dict[tuple[str, float], dict[str, np.ndarray]] = {}

    def parts(self, method: str, rank_constant: float = 60.0) -> dict[str, np.ndarray]:
        """Normalised member scores (float32), as WeightedHybrid computes them."""
        key = (method, rank_constant if method == "rank" else 0.0)
        if key not in self._norm:
            self._norm[key] = {
                k: normalise(v, self.seen, method, rank_constant=rank_constant).astype(np.float32)  # type: ignore[arg-type]
                for k, v in self.raw.items()
            }
        return self._norm[key]

    def per_user_ndcg(self, total: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """NDCG@10 of each (selected) row for the blended scores `total` of those rows."""
        seen = self.seen if rows is None else self.seen[rows]
        truth = self.truth if rows is None else self.truth[rows]
        scores = np.array(total, dtype=np.float32)
        r, c = seen.nonzero()
        scores[r, c] = -np.inf
        recs, _ = top_k(scores, 10)
        return np.asarray(ndcg(hit_matrix(recs, truth), np.diff(truth.indptr)))

    def score_blend(self, entry: dict[str, Any]) -> float:
        """Validation NDCG@10 of a recorded blend (flat or per-activity weights) here."""
        parts = self.parts(entry["normalization"], entry.get("rank_constant", 60.0))
        # bounds were found on carvings of the entry's fraction: rescale to these carvings'
        # history lengths
        scale = (1.0 - self.fraction) / (1.0 - entry.get("validation_fraction", 0.2))
        bounds = [round(b * scale) for b in entry.get("activity_bounds", [])]
        buckets = entry.get("activity_weights") or [entry["weights"]]
        which = np.searchsorted(np.asarray(bounds, np.int64), self.lengths, side="right")
        total = np.zeros(next(iter(parts.values())).shape, np.float32)
        for j, w in enumerate(buckets):
            rows = which == j
            for k, x in w.items():
                if x > 0:
                    total[rows] += np.float32(x) * parts[k][rows]
        return float(self.per_user_ndcg(total).mean())


def search_weights(
    parts: dict[str, np.ndarray], carv: Carvings, rows: np.ndarray, keys: list[str], trials: int
) -> tuple[dict[str, float], float]:
    """Optuna TPE (seed 42) over the weights of `keys` on the selected rows: (weights summing
    to 1, mean NDCG@10 of those rows)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sub = {k: parts[k][rows] for k in keys}
    seen = carv.seen[rows]
    truth = carv.truth[rows]
    n_truth = np.diff(truth.indptr)
    r, c = seen.nonzero()

    def evaluate(w: np.ndarray) -> float:
        scores = np.zeros(sub[keys[0]].shape, np.float32)
        for k, x in zip(keys, w, strict=True):
            if x > 0:
                scores += np.float32(x) * sub[k]
        scores[r, c] = -np.inf
        recs, _ = top_k(scores, 10)
        return float(ndcg(hit_matrix(recs, truth), n_truth).mean())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    study.enqueue_trial({k: 1.0 for k in keys})

    def objective(trial: Any) -> float:
        w = np.array([trial.suggest_float(k, 0.0, 1.0) for k in keys])
        return evaluate(w / w.sum()) if w.sum() > 0 else 0.0

    study.optimize(objective, n_trials=trials)
    w = np.array([study.best_params[k] for k in keys])
    w = w / w.sum()
    return {k: round(float(x), 4) for k, x in zip(keys, w, strict=True)}, float(study.best_value)


def save_log(out: Path, log: dict[str, Any]) -> None:
    """Write this run's members and blends over the file's current ones, so runs made in
    parallel (different members or sets) keep each other's entries."""
    current = json.loads(out.read_text()) if out.exists() else {}
    for section in ("members", "blends"):
        current.setdefault(section, {}).update(log.get(section, {}))
    out.write_text(json.dumps(current, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="ml-100k", choices=sorted(LOADERS))
    ap.add_argument("--members", default=",".join(CANDIDATES))
    ap.add_argument("--trials", type=int, default=150)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/serendip-hybrid-search"))
    ap.add_argument("--test", nargs="*", default=[])
    ap.add_argument("--seeds", default="42", help="validation split seeds, stacked")
    ap.add_argument(
        "--holdout-seeds",
        default="",
        help="other carvings' seeds: every blend searched is also scored there (weights not "
        "tuned on them), an out-of-sample check for choosing between blends",
    )
    ap.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of each user's training interactions held out per carving (a smaller "
        "share fits the members on more data, closer to the full train they are refitted on)",
    )
    ap.add_argument("--sets", default="", help="comma-separated blend set names (default all)")
    ap.add_argument("--methods", default="minmax,zscore,rank")
    ap.add_argument("--rank-constant", type=float, default=60.0, help="c of 1 / (c + rank)")
    ap.add_argument(
        "--activity",
        default="",
        help="comma-separated bucket counts for per-user-activity weights (0 or empty: flat "
        "weights only); buckets split the validation users' history lengths at quantiles",
    )
    ap.add_argument(
        "--bag", action="store_true", help="flat weights: average of per-carving searches"
    )
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
            if name in tests:
                raise SystemExit(f"'{name}' was already evaluated on test; once per blend")
            tests[name] = run_test(name, log, split)
            tests_path.write_text(json.dumps(tests, indent=2) + "\n")
        return
    # one or more validation splits (seeds), stacked: each user counts once per split, which
    # averages the weights' noise over several carvings of the same training data
    seeds = [int(x) for x in args.seeds.split(",")]
    members = args.members.split(",")
    args.cache.mkdir(parents=True, exist_ok=True)
    frac = args.val_fraction
    carv = Carvings(split.train, seeds, members, args.cache, args.dataset, frac)
    hold_seeds = [int(x) for x in args.holdout_seeds.split(",") if x]
    hold = (
        Carvings(split.train, hold_seeds, members, args.cache, args.dataset, frac)
        if hold_seeds
        else None
    )
    if args.fit_only:
        return
    raw = carv.raw
    seeds_label = "" if seeds == [42] else f"/seeds={args.seeds}"
    seeds_label += "" if frac == 0.2 else f"/v{frac:g}"
    if args.rescore:
        # re-evaluate recorded blends' weights on this run's validation carvings (comparable
        # numbers across blends searched on different seed sets; validation only)
        for label in args.rescore:
            b = log["blends"][label]
            value = carv.score_blend(b)
            where = args.seeds if frac == 0.2 else f"{args.seeds}/v{frac:g}"
            b.setdefault("rescored", {})[where] = value
            print(f"rescore {label:50s} validation(seeds={args.seeds}) ndcg@10={value:.4f}")
        save_log(out, log)
        return
    member_val: dict[str, float] = {}
    for key in raw:
        val_ndcg = float(carv.per_user_ndcg(raw[key]).mean())
        member_val[key] = val_ndcg
        log["members"][key + seeds_label] = {
            "model": CANDIDATES[key][0],
            "params": CANDIDATES[key][1],
            "validation_ndcg@10": val_ndcg,
        }
        if hold is not None:
            log["members"][key + seeds_label]["holdout_ndcg@10"] = float(
                hold.per_user_ndcg(hold.raw[key]).mean()
            )
        print(f"member {key:16s} validation ndcg@10={val_ndcg:.4f}", flush=True)

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
        "ease+user-ease": [ease, picks.get("user-ease")],
        "every": list(raw),
    }
    wanted = set(args.sets.split(",")) if args.sets else set(sets)
    bucket_counts = [int(x) for x in args.activity.split(",") if x] or [0]
    for set_name, keys in sets.items():
        if set_name not in wanted or any(k is None or k not in raw for k in keys):
            continue
        keys = list(dict.fromkeys(keys))
        for method in args.methods.split(","):
            parts = carv.parts(method, args.rank_constant)
            for n_buckets in bucket_counts:
                t0, c0 = time.perf_counter(), time.process_time()
                entry = search_blend(
                    carv, parts, keys, method, n_buckets, args.trials, bag=args.bag
                )
                entry["rank_constant"] = args.rank_constant
                entry["validation_seeds"] = seeds
                entry["validation_fraction"] = frac
                label = f"{set_name}/{method}"
                label += f"@c{args.rank_constant:g}" if method == "rank" else ""
                label += f"/act{n_buckets}" if n_buckets > 1 else ""
                label += "/bag" if args.bag else ""
                label += seeds_label + (f"/{args.tag}" if args.tag else "")
                if hold is not None:
                    entry["holdout_seeds"] = hold_seeds
                    entry["holdout_ndcg@10"] = hold.score_blend(entry)
                entry["search_seconds"] = {
                    "wall": round(time.perf_counter() - t0, 1),
                    "cpu": round(time.process_time() - c0, 1),
                }
                log["blends"][label] = entry
                held = (
                    f" holdout={entry['holdout_ndcg@10']:.4f}" if "holdout_ndcg@10" in entry else ""
                )
                print(
                    f"blend {label:40s} validation ndcg@10={entry['validation_ndcg@10']:.4f}"
                    f"{held} ({entry['search_seconds']}) {entry['weights']} "
                    f"{entry.get('activity_bounds', '')} {entry.get('activity_weights', '')}",
                    flush=True,
                )
                save_log(out, log)
    save_log(out, log)


def search_blend(
    carv: Carvings,
    parts: dict[str, np.ndarray],
    keys: list[str],
    method: str,
    n_buckets: int,
    trials: int,
    bag: bool = False,
) -> dict[str, Any]:
    """Flat weights (n_buckets <= 1) or per-activity-bucket weights. NDCG is a mean over users,
    so each bucket's weights are searched on that bucket's users alone, independently.

    bag: flat weights searched on each carving alone, then averaged (less variance from the
    search than one search on the stacked carvings); the validation value is the averaged
    weights' NDCG@10 on all carvings."""
    all_rows = np.arange(carv.seen.shape[0])
    if bag:
        found = [
            search_weights(parts, carv, np.flatnonzero(carv.row_seed == sd), keys, trials)[0]
            for sd in carv.seeds
        ]
        mean = {k: float(np.mean([w[k] for w in found])) for k in keys}
        weights = {k: round(v / sum(mean.values()), 4) for k, v in mean.items()}
        blended = sum(np.float32(w) * parts[k] for k, w in weights.items() if w > 0)
        value = float(carv.per_user_ndcg(np.asarray(blended)).mean())
    else:
        weights, value = search_weights(parts, carv, all_rows, keys, trials)
    entry: dict[str, Any] = {
        "members": {k: CANDIDATES[k][1] for k in keys},
        "member_models": {k: CANDIDATES[k][0] for k in keys},
        "normalization": method,
        "weights": weights,
        "validation_ndcg@10": value,
        "trials": trials,
    }
    if n_buckets <= 1:
        return entry
    qs = np.quantile(carv.lengths, np.linspace(0, 1, n_buckets + 1)[1:-1])
    bounds = sorted({int(np.ceil(q)) for q in qs})
    which = np.searchsorted(np.asarray(bounds), carv.lengths, side="right")
    bucket_w, total = [], 0.0
    for j in range(len(bounds) + 1):
        rows = np.flatnonzero(which == j)
        w, v = search_weights(parts, carv, rows, keys, trials)
        bucket_w.append(w)
        total += v * len(rows)
    entry.update(
        {
            "flat_validation_ndcg@10": value,
            "validation_ndcg@10": total / len(all_rows),
            "activity_bounds": bounds,
            "activity_weights": bucket_w,
        }
    )
    return entry


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
        "- Validation: random 80/20 carvings of the training split (90/10 and 95/5 where a "
        "label says v0.1 / v0.05; seeds listed; several seeds "
        "are stacked, each user counted once per carving). Validation NDCG@10 is lower than "
        "test NDCG@10 by construction: the held-out test items of each user are unknown while "
        "validating, so they count as misses. Numbers are comparable only within one seed set.",
        "- Weights: optuna TPE (seed 42) on cached member scores; labels are "
        "set/normalisation[@c rank constant]/[actN: per-user-activity weights, N history-length "
        "buckets at validation quantiles, each bucket's weights searched on its users; the "
        "weights column shows the flat ones, the bucket weights are in the JSON]/seeds/tag (no "
        "seeds: seed 42 alone). Holdout: the blend's weights scored on other carvings "
        "(`--holdout-seeds`), whose users' scores were not used to choose the weights. The "
        "test column is filled only for the blends evaluated on test, each once.",
        f"- Test evaluations made so far: {len(tests)} ({', '.join(f'`{t}`' for t in tests)}).",
    ]
    for note in log.get("notes", []):
        lines.append(f"- {note}")
    lines += [
        "",
        "### Members alone (validation NDCG@10)",
        "",
        "| member | params | validation | holdout |",
        "|---|---|---:|---:|",
    ]
    for key, m in log.get("members", {}).items():
        hold = m.get("holdout_ndcg@10")
        lines.append(
            f"| {key} | `{json.dumps(m['params'])}` | {m['validation_ndcg@10']:.4f} | "
            f"{'' if hold is None else f'{hold:.4f}'} |"
        )
    lines += [
        "",
        "### Blends (validation NDCG@10)",
        "",
        "| blend | weights | activity bounds | validation | holdout | rescored (`--rescore`: "
        "seeds[/fraction]: NDCG@10) | test |",
        "|---|---|---|---:|---:|---|---:|",
    ]
    for label, b in log.get("blends", {}).items():
        test = tests.get(label, {}).get("test_ndcg@10")
        hold = b.get("holdout_ndcg@10")
        w = ", ".join(f"{k} {v:.3f}" for k, v in b["weights"].items())
        lines.append(
            f"| {label} | {w} | {b.get('activity_bounds', '')} | "
            f"{b['validation_ndcg@10']:.4f} | {'' if hold is None else f'{hold:.4f}'} | "
            f"{'; '.join(f'{k}: {v:.4f}' for k, v in b.get('rescored', {}).items())} | "
            f"{'' if test is None else f'{test:.4f}'} |"
        )
    out = RESULTS_DIR / f"hybrid-search-{dataset}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def hybrid_params(entry: dict[str, Any]) -> dict[str, Any]:
    """The WeightedHybrid config of a blend entry (member keys made registry keys; activity
    bounds scaled from validation to full-train history lengths, see VALIDATION_SHARE)."""
    keymap = {}
    for key in entry["members"]:
        model = entry["member_models"][key]
        label = key.split("@", 1)[1] if "@" in key else ""
        keymap[key] = f"{model}@{label}" if label else model
    out: dict[str, Any] = {
        "members": {keymap[k]: p for k, p in entry["members"].items()},
        "weights": {keymap[k]: w for k, w in entry["weights"].items()},
        "normalization": entry["normalization"],
    }
    if entry["normalization"] == "rank":
        out["rank_constant"] = entry.get("rank_constant", 60.0)
    if entry.get("activity_bounds"):
        share = 1.0 - entry.get("validation_fraction", 1.0 - VALIDATION_SHARE)
        out["activity_bounds"] = [round(b / share) for b in entry["activity_bounds"]]
        out["activity_weights"] = [
            {keymap[k]: w for k, w in b.items()} for b in entry["activity_weights"]
        ]
    return out


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
