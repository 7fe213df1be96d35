"""The production pipeline against the best single model of the zoo (issue 5).

For each dataset and its protocol -- MovieLens 100K temporal (last 20% of interactions by time),
Last.fm 2K random (per-user 80/20, seed 42, users with < 5 interactions kept in train) and the
synthetic `small` platform temporal -- this script:

1. fits the single-model candidates (ease, user-ease, ials, item-knn, rp3beta; parameters from
   `benchmarks/model_params.json` where tuned there, else defaults) on a validation split carved
   from train with the same protocol, and picks the best by validation NDCG@10; that model
   becomes the pipeline's collaborative source. Pipeline variants (`VARIANTS`: the runner-up
   single model as a second collaborative source or not, time-window or random label windows,
   ranker settings) are fitted on the validation train, and the request-time re-ranking knobs
   (`mmr_lambda`, `oon_target`, `oon_boost`, `popularity_penalty`, `tail_target`,
   `exposure_penalty` with its `pool`) swept over each without refitting. The choice: most of the issue's floors met on
   validation among the settings that meet the NDCG floor (+3% over the best validation
   single model, popularity and trending included; if none does, the best NDCG), then the best
   validation NDCG@10 -- or, where only the out-of-network floor is missed, the highest
   out-of-network HitRate (rule in the JSON). Test data is never used for a choice.
2. fits every candidate, the references (popularity, time-decayed trending) and the pipeline
   on train and evaluates on test over full rankings
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
import itertools
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
from serendip.evaluation.selection import (
    TIE,
    TIE_SE,
    Floors,
    choose,
    floors_met,
    matched_temporal_folds,
    validation_reference,
)
from serendip.models.base import RecLists, Recommender
from serendip.models.registry import get_model_class
from serendip.pipeline.config import PipelineConfig
from serendip.pipeline.recommender import PipelineRecommender
from serendip.threads import limit_threads

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))
PARAMS_FILE = ROOT / "model_params.json"
RESULTS_DIR = ROOT / "results"
#: User-EASE joined in stop 10: the best single model on the random protocols of issue 3, so
#: "the best single model" here has to include it.
CANDIDATES = ("ease", "user-ease", "ials", "item-knn", "rp3beta")
#: Zoo models that are never the collaborative source but can be the best single model on a
#: protocol (time-decayed popularity wins ML100K temporal in the study): fitted on train and
#: evaluated on test beside the candidates, so "the best single model" is the best of them all.
REFERENCES = ("popularity", "trending")
#: Label windows of the ranker: 3 won on validation for every dataset against 1 in the first
#: run (see git history of pipeline.json), and each window costs a stage-one fit.
N_WINDOWS = 3
#: Pipeline variants fitted on validation: (second collaborative source?, label split[, ranker
#: parameters over `_pipeline_params`']). The second source is the runner-up single model of
#: validation; "random" label windows match Last.fm's random protocol (its timestamps are tag
#: dates). ML100K: also label windows of 10% of train (more training groups: 3 x 20% gave
#: 99-175 groups on the validation folds, 6 x 10% 138-247, 8 x 10% 196-308), alone and with
#: the ranker boosting from the trending prior (`ranker.prior_weight`); on five matched-length
#: validation folds (docs/research-log.md, ML100K temporal search; plain re-ranking) NDCG@10 vs
#: trending 0.180: 3 x 20% 0.183, 6 x 10% 0.200 (seed 1: 0.195), 6 x 10% + prior 0.5 0.209
#: (seed 1: 0.208; prior 1.0: 0.197), 8 x 10% + prior 0.5 0.206 (every fold above trending).
ML100K_W6 = {"ranker.n_windows": 6, "ranker.label_fraction": 0.1}
ML100K_W8 = {"ranker.n_windows": 8, "ranker.label_fraction": 0.1}
#: Last.fm has ~2,900 label users, ten times ML100K's: deeper trees than the 3-leaf default
#: here (chosen on ML100K) can be afforded. One validation fold, plain re-ranking, collaborative
#: user-ease + ials (stop 10, lead's check): 3 leaves 0.1872, 7 leaves 0.1913, 15 leaves with
#: 0.9 of the features 0.1914 NDCG@10, coverage 0.045 / 0.059 / 0.067.
LASTFM_DEEPER = {
    "ranker.num_leaves": 15,
    "ranker.min_child_samples": 50,
    "ranker.colsample_bytree": 0.9,
}
VARIANTS: dict[str, tuple[tuple[bool, str] | tuple[bool, str, dict[str, Any]], ...]] = {
    "ml-100k": (
        (False, "global"),
        (True, "global"),
        (False, "global", ML100K_W6),
        (False, "global", {**ML100K_W6, "ranker.prior_weight": 0.5}),
        (False, "global", {**ML100K_W8, "ranker.prior_weight": 0.5}),
    ),
    "lastfm-2k": (
        # Last.fm's listens carry no timestamps, so every label split is the random one (the
        # "random" variant of stop 10 repeated "global" number for number): one is enough
        (True, "global"),
        (True, "global", LASTFM_DEEPER),
        (True, "global", {**LASTFM_DEEPER, "ranker.num_leaves": 7, "ranker.colsample_bytree": 0.5}),
    ),
    "small": ((False, "global"),),
}
#: Request-time re-ranking knobs tried on validation (no refit): MMR lambda, out-of-network
#: target and boost (social data only), popularity penalty, long-tail quota, exposure penalty.
#: (MMR below 1 lowered validation NDCG@10 on every dataset in the first run at equal coverage;
#: the long-tail quota was never chosen in the runs before the exposure penalty: both off.)
#: Exposure penalty (relevance minus p x log(1 + times the item was already shown to the users
#: served before in the same call)): the coverage lever where the ranker's favourites are the
#: same fresh items for everyone (the synthetic feed), where the popularity penalty cannot help.
#: Out-of-network: (oon_target, oon_boost) pairs. A hard share takes the best out-of-network
#: items however weak; the soft boost (added to the [0, 1] relevance) traded less NDCG for the
#: same out-of-network HitRate on Last.fm validation (boost 0.1: -3% NDCG, +15% OON HitRate;
#: target 0.4: -13% NDCG, +11%).
#: Exposure: (exposure_penalty, pool, exposure_free_top) -- the penalty can only spread the
#: lists over what enters the pool, so it comes with a deeper pool (300 gave 0.46 coverage on
#: `small` validation where 100 gave 0.39 at penalty 0.2-0.3); a free head of the list keeps
#: most of the NDCG (`small` validation, coverage ~0.6 both: NDCG@10 0.090 with no free head,
#: 0.115 with the first 5 positions free).
MMR_GRID = (1.0,)
OON_GRID: tuple[tuple[float | None, float], ...] = (
    (None, 0.0),
    (None, 0.05),
    (None, 0.1),
    (None, 0.2),
    (0.3, 0.0),
    (0.5, 0.0),
)
POP_GRID = (0.0, 0.3, 0.5)
TAIL_GRID = (None,)
EXPOSURE_GRID: tuple[tuple[float, int, int], ...] = (
    (0.0, 100, 0),
    (0.1, 300, 5),  # mild: Last.fm validation coverage 0.93x the reference at no NDCG loss
    (0.2, 300, 5),  # research log, oon_tradeoff: Last.fm coverage 1.72x at NDCG 1.00x
    (0.25, 300, 0),
    (0.3, 300, 3),
    (0.3, 300, 5),
    (0.4, 300, 5),
    (0.5, 300, 5),
)
KNOBS = (
    "mmr_lambda",
    "oon_target",
    "oon_boost",
    "popularity_penalty",
    "tail_target",
    "exposure_penalty",
    "pool",
    "exposure_free_top",
)
#: The choice rule on validation (`serendip.evaluation.selection`): single models tied with the
#: best on validation NDCG@10 -- the paired per-user difference within TIE_SE standard errors
#: of zero, or within the share TIE of the best -- are one statistical class, and the
#: validation reference for coverage / novelty / out-of-network takes the best among them. (On
#: `small` every NDCG@10 is ~0.004 and the best single model flips between trending and rp3beta
#: from one split to the next: the coverage floor must not hang on that coin.) The NDCG floor
#: is as cautious: against the best model's mean + TIE_SE standard errors, so that a coverage
#: penalty may not spend a margin that ~200 validation users (ML100K) cannot vouch for.
#: Validation folds per dataset (metrics averaged): ML100K's temporal validation holds ~100
#: users, too few for one fold to choose between pipeline variants (a variant that won one
#: fold by 25% lost on test in a trial run; pipeline vs trending ranged -14% to +21% over five
#: folds), so five folds (`VAL_WINDOWS`).
VAL_FOLDS = {"ml-100k": 5}
#: Validation windows as long as the test window, stepping back: (window, step), shares of the
#: train's interactions (`serendip.evaluation.selection.matched_temporal_folds`). ML100K: the test window
#: holds 20% of the data = 25% of train; the nested folds (20% of train, then 20% of that
#: fold's train) were shorter than the test window and the older one favoured the pipeline
#: (pipeline vs trending +8% and +79% on the two nested folds, -14% to +21% on five matched
#: ones; docs/research-log.md, ML100K temporal search).
VAL_WINDOWS: dict[str, tuple[float, float]] = {"ml-100k": (0.25, 0.0625)}
K = 10
METRICS = ("ndcg@10", "recall@10", "coverage@10", "novelty@10", "oon_hit_rate@10", "oon_share@10")
FLOORS = {"ndcg_gain": 0.03, "oon_ratio": 1.5, "cold_ratio": 2.0, "p99_ms": 30.0}
PIPELINE_FLOORS = Floors(ndcg_gain=FLOORS["ndcg_gain"], oon_ratio=FLOORS["oon_ratio"])


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
        **{key: m.get(key) for key in METRICS},
        "recommend_ms_per_user": 1000 * rec_s / max(len(users), 1),
    }


def _validate_single(
    name: str, params: dict[str, Any], folds: list[Split]
) -> tuple[dict[str, Any], np.ndarray]:
    """A single model on the validation folds: mean metrics, and per-user NDCG@10 of every fold
    concatenated (users by ID within a fold) for the paired tie test."""
    per_fold, per_user = [], []
    for f in folds:
        model, _ = _fit(name, params, f.train)
        users = _test_users(f)
        t0 = time.perf_counter()
        recs = model.recommend(users, K)
        rec_s = time.perf_counter() - t0
        res = evaluate_recommendations(recs, f.train, f.test, k=K, keep_per_user=True)
        per_fold.append(
            {
                **{key: res.metrics.get(key) for key in METRICS},
                "recommend_ms_per_user": 1000 * rec_s / max(len(users), 1),
            }
        )
        assert res.per_user is not None
        rows = res.per_user.sort_values("user", kind="stable")
        per_user.append(rows["ndcg@10"].to_numpy(np.float64))
    return _mean_metrics(per_fold), np.concatenate(per_user)


def _fit(name: str, params: dict[str, Any], train: Dataset) -> tuple[Any, float]:
    t0 = time.perf_counter()
    model = get_model_class(name)(params).fit(train)
    return model, time.perf_counter() - t0


def _val_folds(name: str, train: Dataset) -> list[Split]:
    """The validation folds carved from `train`: `VAL_WINDOWS` where set, else the protocol's
    split of train, then of that fold's train, ... (`VAL_FOLDS` of them)."""
    n = VAL_FOLDS.get(name, 1)
    if name in VAL_WINDOWS:
        window, step = VAL_WINDOWS[name]
        return matched_temporal_folds(train, n, window, step)
    folds = [_split(name, train)]
    for _ in range(1, n):
        folds.append(_split(name, folds[-1].train))  # the same protocol, one step earlier
    return folds


def _pipeline_params(
    collab: str,
    collab_params: dict[str, Any],
    second: tuple[str, dict[str, Any]] | None = None,
    label_split: str = "global",
    ranker: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sources.collaborative.params": {"model": collab, "params": collab_params},
        "ranker.n_windows": N_WINDOWS,
        "ranker.label_split": label_split,
        # The ranker's LightGBM settings, chosen on validation folds carved from train (ML100K:
        # three earlier temporal folds x two seeds; Last.fm 2K and `small`: their validation
        # fold): five members bagged over user folds, trees of 3 leaves with at least 100 rows
        # a leaf, half the features per tree (the class defaults since stop 11; kept here so
        # the benchmark's recipe is explicit). On ML100K temporal the earlier defaults (one
        # member, 31 leaves) averaged NDCG@10 0.184 against 0.217 with these (trending, the best single
        # model there: 0.191): a few hundred warm label users, whose noise deep trees fit.
        "ranker.n_models": 5,
        "ranker.num_leaves": 3,
        "ranker.min_child_samples": 100,
        "ranker.colsample_bytree": 0.5,
    }
    if second is not None:
        out["sources.collaborative-2.params"] = {"model": second[0], "params": second[1]}
        out["sources.collaborative-2.quota"] = 100
    return {**out, **(ranker or {})}


def _set_rerank(model: PipelineRecommender, **knobs: Any) -> None:
    """Re-ranking knobs act at request time: change them on the fitted model (no refit)."""
    cfg = model.config
    assert isinstance(cfg, PipelineConfig)
    model.config = cfg.model_copy(update={"rerank": cfg.rerank.model_copy(update=knobs)})
    model.__dict__.pop("_pop_scale", None)


def _ranked(model: PipelineRecommender, users: np.ndarray) -> list[tuple[Any, Any, Any]]:
    """(context, candidate items, ranker scores) per user: stages one and two once, so that
    the re-ranking grid only re-runs stage three (exactly what `recommend` does after them)."""
    out = []
    for start in range(0, len(users), 256):
        contexts = model.user_contexts([str(u) for u in users[start : start + 256]])
        frame = model.stage_.frame(contexts)
        scores = model._rank(frame, contexts)
        bounds = np.searchsorted(frame.row, np.arange(len(contexts) + 1))
        for r, ctx in enumerate(contexts):
            sel = slice(bounds[r], bounds[r + 1])
            out.append((ctx, frame.item[sel], scores[sel]))
    return out


def _mean_metrics(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics averaged over validation folds (None stays None)."""
    return {
        key: None if per_fold[0][key] is None else float(np.mean([m[key] for m in per_fold]))
        for key in per_fold[0]
    }


def _evaluate_cached(
    model: PipelineRecommender,
    ranked: list[tuple[Any, Any, Any]],
    split: Split,
    knobs: dict[str, Any],
) -> dict[str, Any]:
    _set_rerank(model, **knobs)
    users = np.array([c.user for c, _, _ in ranked], dtype=object)
    items = np.full((len(users), K), -1, np.int64)
    scores = np.full((len(users), K), -np.inf, np.float32)
    exposure = model._exposure_counter()  # one count over all users, as one `recommend` call
    for j, (ctx, cand, sc) in enumerate(ranked):
        chosen, shown = model._final_list(ctx, cand, sc, K, None, True, exposure)
        items[j, : len(chosen)] = chosen
        scores[j, : len(chosen)] = shown
    recs = RecLists(users, items, scores, model.items_)
    m = evaluate_recommendations(recs, split.train, split.test, k=K).metrics
    return {key: m.get(key) for key in METRICS}


def run_dataset(name: str, platform_dir: Path) -> dict[str, Any]:
    ds = _load(name, platform_dir)
    split = _split(name, ds)
    folds = _val_folds(name, split.train)
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
    per_user_ndcg: dict[str, np.ndarray] = {}
    for cand in CANDIDATES:
        if name == "small" and cand == "ease":
            continue  # a dense 20k x 20k item matrix: beyond this machine's shared memory
        try:
            val_scores[cand], per_user_ndcg[cand] = _validate_single(
                cand, tuned.get(cand, {}), folds
            )
        except SerendipError as exc:
            print(f"{name:10s} {cand:10s} skipped: {exc}", flush=True)
            continue
        print(f"{name:10s} validation {cand:10s} ndcg@10={val_scores[cand]['ndcg@10']:.4f}",
              flush=True)  # fmt: skip
    ranked_singles = sorted(val_scores, key=lambda c: -val_scores[c]["ndcg@10"])
    collab = ranked_singles[0]
    second = ranked_singles[1] if len(ranked_singles) > 1 else None
    # the floors are against the best single model of them all, references included (on
    # ML100K temporal time-decayed popularity wins: its coverage, not iALS's, is the floor),
    # so the validation reference is the best of candidates and references on validation
    every = dict(val_scores)
    for ref_name in REFERENCES:
        every[ref_name], per_user_ndcg[ref_name] = _validate_single(
            ref_name, tuned.get(ref_name, {}), folds
        )
        print(f"{name:10s} validation {ref_name:10s} ndcg@10={every[ref_name]['ndcg@10']:.4f}",
              flush=True)  # fmt: skip
    ref = validation_reference(every, per_user_ndcg)
    social = val_scores[collab].get("oon_hit_rate@10") is not None
    grid = []
    for use_second, label_split, *more in VARIANTS[name]:
        if use_second and second is None:
            continue
        two = (second, tuned.get(second, {})) if use_second and second else None
        extra: dict[str, Any] = dict(more[0]) if more else {}
        params = _pipeline_params(collab, tuned.get(collab, {}), two, label_split, extra)
        t0 = time.perf_counter()
        fitted = []
        for f in folds:
            model, _ = _fit("pipeline", params, f.train)
            fitted.append((model, _ranked(model, _test_users(f)), f))
        print(f"{name:10s} validation pipeline second={two and two[0]} labels={label_split} "
              f"ranker={extra} "
              f"fit+rank {time.perf_counter() - t0:.0f}s", flush=True)  # fmt: skip
        for mmr in MMR_GRID:
            for oon, boost in OON_GRID if social else ((None, 0.0),):
                for pop, tail, (expo, pool, free_top) in itertools.product(
                    POP_GRID, TAIL_GRID, EXPOSURE_GRID
                ):
                    knobs = {"mmr_lambda": mmr, "oon_target": oon, "oon_boost": boost,
                             "popularity_penalty": pop, "tail_target": tail,
                             "exposure_penalty": expo, "pool": pool,
                             "exposure_free_top": free_top}  # fmt: skip
                    m = _mean_metrics(
                        [_evaluate_cached(model, ranked, f, knobs) for model, ranked, f in fitted]
                    )
                    met = floors_met(m, ref, social, PIPELINE_FLOORS)
                    grid.append({"second": two[0] if two else None, "label_split": label_split,
                                 "ranker": extra,
                                 **knobs, "floors_met": met, **m})  # fmt: skip
                    print(f"{name:10s}   mmr={mmr} oon={oon} boost={boost} pop={pop} "
                          f"tail={tail} expo={expo} pool={pool} free_top={free_top} "
                          f"ndcg@10={m['ndcg@10']:.4f} cov={m['coverage@10']:.4f} "
                          f"oon_hr={m['oon_hit_rate@10'] or 0:.4f} "
                          f"met={sorted(k for k, v in met.items() if v)}", flush=True)  # fmt: skip
    choice = choose(grid)
    choice_keys = ("second", "label_split", "ranker", *KNOBS)
    out["validation"] = {
        "singles": every,
        "collaborative_source": collab,
        "reference": ref,
        "grid": grid,
        "choice": {k: choice[k] for k in choice_keys},
        "n_folds": len(folds),
        "choice_rule": "the NDCG floor first (NDCG@10 +3% over the best validation single "
        "model, popularity and trending included, taken at its upper confidence bound: mean + "
        f"{TIE_SE:g} standard errors of its per-user NDCG@10; settings short of it rank by "
        "NDCG@10 alone); among those that meet it, most of the other floors met (coverage, novelty, "
        "and on social data out-of-network HitRate 1.5x; coverage / novelty / OON reference = "
        "the best among the single models tied with the best on validation NDCG@10: paired "
        f"per-user difference within {TIE_SE:g} standard errors or {TIE:.0%}); then, where "
        "only the out-of-network floor is missed, the highest validation out-of-network "
        "HitRate@10, otherwise the best validation NDCG@10; metrics averaged over the "
        "validation folds",
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
    two = (choice["second"], tuned.get(choice["second"], {})) if choice["second"] else None
    params = _pipeline_params(
        collab, tuned.get(collab, {}), two, choice["label_split"], choice["ranker"]
    )
    knobs = {k: choice[k] for k in KNOBS}
    params = {**params, **{f"rerank.{k}": v for k, v in knobs.items()}}
    pipe, fit_s = _fit("pipeline", params, split.train)
    out["pipeline"] = {
        "params": params,
        "fit_s": fit_s,
        "ranker": pipe.report_.to_dict(),
        "top_features": dict(sorted(pipe.report_.importance.items(), key=lambda kv: -kv[1])[:8]),
        **_evaluate(pipe, split),
    }
    print(f"{name:10s} test pipeline   ndcg@10={out['pipeline']['ndcg@10']:.4f}", flush=True)
    for ref_name in REFERENCES:
        model, fit_s = _fit(ref_name, tuned.get(ref_name, {}), split.train)
        row = {"model": ref_name, "params": model.get_params(), "fit_s": fit_s,
               **_evaluate(model, split)}  # fmt: skip
        out["singles"].append(row)
        print(f"{name:10s} test {ref_name:10s} ndcg@10={row['ndcg@10']:.4f}", flush=True)
    best = max(out["singles"], key=lambda r: r["ndcg@10"])
    out["best_single"] = best["model"]
    if name == "small":
        out["latency"] = _latency(pipe, split)
        print(f"{name:10s} latency {out['latency']}", flush=True)
        out["cold_items"] = _cold_items(ds, params)
        print(f"{name:10s} cold items {out['cold_items']}", flush=True)
    return out


def _latency(model: PipelineRecommender, split: Split, n: int = 300) -> dict[str, float]:
    """One-user requests in a warmed-up, single-threaded process (as a server runs: BLAS and
    OpenMP pools limited to one thread once; caches built by a warm-up of other users)."""
    limit_threads()
    rng = np.random.default_rng(0)
    users = rng.choice(split.train.users.ids, size=n, replace=True)
    for u in rng.choice(split.train.users.ids, size=100, replace=True):
        model.recommend([u], K)
    times, cpu = [], []
    for u in users:
        t0, c0 = time.perf_counter(), time.process_time()
        model.recommend([u], K)
        times.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        model.save(Path(d) / "m")
        save_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (Path(d) / "m").iterdir()) / 2**20
    return {
        "n_requests": n,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
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
            + " on the 2 shared cores"
            + (
                f"; CPU time per request p50 {lat['cpu_p50_ms']:.1f} ms, p99 "
                f"{lat['cpu_p99_ms']:.1f} ms)"
                if "cpu_p99_ms" in lat
                else ")"
            )
        )
    return lines


def write_markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Production pipeline vs the best single model (issue 5)",
        "",
        f"- Command: `{results['command']}`; machine: {results['machine']}.",
        "- Protocols: ML100K temporal (last 20% by time), Last.fm 2K random 80/20 per user "
        "(seed 42), synthetic `small` (seed 42) temporal; NDCG@10 over the full catalog minus "
        "each user's training items, all test users. The pipeline's collaborative source(s), "
        "label split and re-ranking knobs (MMR, out-of-network target and boost, popularity "
        "penalty, long-tail quota, exposure penalty) were chosen on validation carved from train (five temporal folds "
        "on ML100K, each window as long as the test's, one fold elsewhere; rule: `validation.choice_rule` in the JSON); the "
        "baseline row is the best single model on test. On the synthetic platform most test interactions are on items "
        "created after the cut (a feed), which models without item metadata cannot reach; the "
        "pipeline never shows an item created after the request time. The exposure penalty "
        "counts what one `recommend` call has already shown (all test users in one call, "
        "served in the order of their IDs: earlier users get the ranker's favourites).",
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
            f"Pipeline: collaborative source `{v['collaborative_source']}`"
            + (f" + `{c['second']}` (collaborative-2)" if c.get("second") else "")
            + f", label windows {c.get('label_split', 'global')} x "
            f"{res['pipeline']['params'].get('ranker.n_windows', N_WINDOWS)}"
            + "".join(f", {k} {v}" for k, v in (c.get("ranker") or {}).items())
            + ", mmr_lambda "
            f"{c['mmr_lambda']}, oon_target {c['oon_target']}, popularity_penalty "
            f"{c.get('popularity_penalty', 0.0)}, tail_target {c.get('tail_target')}, "
            f"oon_boost {c.get('oon_boost', 0.0)}, exposure_penalty "
            f"{c.get('exposure_penalty', 0.0)} (first {c.get('exposure_free_top', 0)} positions "
            f"free), pool {c.get('pool', 100)} "
            "(chosen on validation); ranker best iteration "
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
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="with --latency-only: load the fitted `small` pipeline from here (fit and save it "
        "there when absent)",
    )
    ap.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where pipeline.json / pipeline.md are read and written (experiments: a scratch "
        "folder, so that the committed table only changes on a full run)",
    )
    args = ap.parse_args()
    names = args.dataset or ["ml-100k", "lastfm-2k", "small"]
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / "pipeline.json"
    if args.latency_only:
        stored = json.loads(json_path.read_text())
        res = stored["datasets"]["small"]
        ds = _load("small", args.platform_dir)
        split = _split("small", ds)
        if args.model_dir is not None and (args.model_dir / "manifest.json").is_file():
            loaded = Recommender.load(args.model_dir)
            assert isinstance(loaded, PipelineRecommender)
            pipe = loaded
        else:
            pipe, _ = _fit("pipeline", dict(res["pipeline"]["params"]), split.train)
            if args.model_dir is not None:
                pipe.save(args.model_dir)
        res["latency"] = _latency(pipe, split)
        print(res["latency"], flush=True)
        json_path.write_text(json.dumps(stored, indent=2, default=float) + "\n")
        (results_dir / "pipeline.md").write_text(write_markdown(stored))
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
        json_path.write_text(json.dumps(stored, indent=2, default=float) + "\n")
        (results_dir / "pipeline.md").write_text(write_markdown(stored))
    print((results_dir / "pipeline.md").read_text())


if __name__ == "__main__":
    main()
