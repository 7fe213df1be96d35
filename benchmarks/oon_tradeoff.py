"""Out-of-network discovery vs NDCG vs coverage of the pipeline on Last.fm 2K, on VALIDATION only
(issue 5).

The validation fold is bench_pipeline's: the same random 80/20 protocol (seed 42) carved from
the train part of the benchmark split; the test part is never read. The reference is
bench_pipeline's validation reference (the best single model on validation NDCG@10, popularity
and trending included; coverage / OON HitRate the best among the models tied with it).

Pipeline variants (each fitted once on the validation train; the re-ranking knobs then swept
without refitting, exactly as bench_pipeline's grid):

- `base`: the benchmark's Last.fm pipeline (best validation single model as `collaborative`,
  the runner-up as `collaborative-2`, global label windows);
- `oon:<model>:<quota>[:<depth>]`: `base` + the `collaborative-oon` source (that zoo model's
  ranking, `depth` deep, restricted to items outside the user's network) with that quota
  (`best` / `second` name the validation's best / runner-up single model).

Re-ranking grid: (oon_target, oon_boost) x popularity_penalty x (exposure_penalty, pool,
exposure_free_top). Also measured per variant: the share of the validation users'
out-of-network held-out items that are candidates at all (before the re-ranking pool).

Writes `benchmarks/results/oon-tradeoff-lastfm.json` and `.md`.

    python benchmarks/oon_tradeoff.py
    python benchmarks/oon_tradeoff.py --variant base --variant oon:best:100:1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as bp

NAME = "lastfm-2k"
OON_GRID: tuple[tuple[float | None, float], ...] = (
    (None, 0.0),
    (None, 0.05),
    (None, 0.1),
    (None, 0.15),
    (None, 0.2),
    (None, 0.3),
    (None, 0.5),
    (0.1, 0.0),
    (0.2, 0.0),
    (0.3, 0.0),
    (0.5, 0.0),
    (0.7, 0.0),
    (1.0, 0.0),
    (0.3, 0.1),
    (0.5, 0.1),
)
POP_GRID = (0.0, 0.3, 0.5)
EXPOSURE_GRID: tuple[tuple[float, int, int], ...] = (
    (0.0, 100, 0),
    (0.0, 300, 0),
    (0.1, 300, 5),
    (0.2, 300, 5),
    (0.3, 300, 5),
)
DEFAULT_VARIANTS = ("base", "oon:best:100:2000", "oon:rp3beta:100:2000")


def _reference(folds: list[Any], tuned: dict[str, dict[str, Any]]) -> tuple[dict, list[str]]:
    """bench_pipeline's validation reference, and the single models ranked by NDCG@10."""
    every: dict[str, dict[str, Any]] = {}
    per_user: dict[str, np.ndarray] = {}
    for cand in (*bp.CANDIDATES, *bp.REFERENCES):
        every[cand], per_user[cand] = bp._validate_single(cand, tuned.get(cand, {}), folds)
        print(f"validation {cand:10s} ndcg@10={every[cand]['ndcg@10']:.4f} "
              f"cov={every[cand]['coverage@10']:.4f} "
              f"oon={every[cand]['oon_hit_rate@10']:.4f}", flush=True)  # fmt: skip
    best = max(every, key=lambda c: every[c]["ndcg@10"])
    ties = bp._ties(per_user, best)
    ref = {
        "model": best,
        "ties": ties,
        "ndcg@10": every[best]["ndcg@10"],
        "ndcg@10_upper": every[best]["ndcg@10"] + bp.TIE_SE * bp._standard_error(per_user[best]),
        **{
            key: max((every[c].get(key) or 0) for c in ties)
            for key in ("coverage@10", "novelty@10", "oon_hit_rate@10")
        },
        "singles": every,
    }
    ranked = sorted(bp.CANDIDATES, key=lambda c: -every[c]["ndcg@10"])
    return ref, ranked


def _variant_params(
    spec: str, ranked: list[str], tuned: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    collab, second = ranked[0], ranked[1]
    params = bp._pipeline_params(
        collab, tuned.get(collab, {}), (second, tuned.get(second, {})), "global"
    )
    if spec == "base":
        return params
    kind, model, quota, *rest = spec.split(":")
    if kind != "oon":
        raise SystemExit(f"unknown variant {spec}")
    model = {"best": collab, "second": second}.get(model, model)
    src: dict[str, Any] = {"model": model, "params": tuned.get(model, {})}
    if rest:
        src["depth"] = int(rest[0])
    params["sources.collaborative-oon.params"] = src
    params["sources.collaborative-oon.quota"] = int(quota)
    return params


def _candidate_reach(model: Any, ranked: list[tuple[Any, Any, Any]], fold: Any) -> dict:
    """Share of held-out (user, item) pairs -- all, and out-of-network ones -- that are among
    the user's candidates (stage one), and the same within the ranker's top 100 / 300."""
    test = fold.test
    it = test.interactions
    users = test.users.lookup(it.user)
    items = test.items.lookup(it.item)
    truth: dict[str, list[str]] = {}
    for u, i in zip(users, items, strict=True):
        truth.setdefault(str(u), []).append(str(i))
    ids = model.items_
    counts = {k: 0 for k in ("all", "all_cand", "all_top100", "all_top300",
                             "oon", "oon_cand", "oon_top100", "oon_top300")}  # fmt: skip
    for ctx, cand, sc in ranked:
        held = ids.indices(truth.get(ctx.user, []))
        held = held[held >= 0]
        if not len(held):
            continue
        net = model._in_network(ctx, held)
        order = cand[np.argsort(-sc, kind="stable")]
        for tag, sel in (("all", np.ones(len(held), bool)), ("oon", ~net)):
            h = held[sel]
            counts[tag] += len(h)
            counts[f"{tag}_cand"] += int(np.isin(h, cand).sum())
            counts[f"{tag}_top100"] += int(np.isin(h, order[:100]).sum())
            counts[f"{tag}_top300"] += int(np.isin(h, order[:300]).sum())
    out: dict[str, Any] = {"n_heldout": counts["all"], "n_heldout_oon": counts["oon"]}
    for tag in ("all", "oon"):
        for where in ("cand", "top100", "top300"):
            out[f"{tag}_{where}"] = counts[f"{tag}_{where}"] / max(counts[tag], 1)
    out["mean_candidates"] = float(np.mean([len(c) for _, c, _ in ranked]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", help=f"default: {' '.join(DEFAULT_VARIANTS)}")
    ap.add_argument("--out", type=Path, default=bp.RESULTS_DIR / "oon-tradeoff-lastfm")
    args = ap.parse_args()
    variants = args.variant or list(DEFAULT_VARIANTS)
    ds = bp._load(NAME, Path("/nonexistent"))
    split = bp._split(NAME, ds)
    fold = bp._split(NAME, split.train)  # validation: carved from train; test never read
    del split
    tuned = bp._params(NAME)
    ref, ranked = _reference([fold], tuned)
    result: dict[str, Any] = {
        "dataset": NAME,
        "protocol": "validation fold of bench_pipeline (random 80/20 per user, seed 42, carved "
        "from the benchmark's train part)",
        "n_validation_users": len(bp._test_users(fold)),
        "reference": ref,
        "variants": {},
        "grid": [],
    }
    for spec in variants:
        params = _variant_params(spec, ranked, tuned)
        t0 = time.perf_counter()
        model, _ = bp._fit("pipeline", params, fold.train)
        fit_s = time.perf_counter() - t0
        ranked_lists = bp._ranked(model, bp._test_users(fold))
        reach = _candidate_reach(model, ranked_lists, fold)
        result["variants"][spec] = {
            "params": params,
            "fit_s": fit_s,
            "reach": reach,
            "top_features": dict(
                sorted(model.report_.importance.items(), key=lambda kv: -kv[1])[:10]
            ),
        }
        print(f"{spec}: fit {fit_s:.0f}s reach {reach}", flush=True)
        for (oon, boost), pop, (expo, pool, free) in itertools.product(
            OON_GRID, POP_GRID, EXPOSURE_GRID
        ):
            knobs = {"mmr_lambda": 1.0, "oon_target": oon, "oon_boost": boost,
                     "popularity_penalty": pop, "tail_target": None, "exposure_penalty": expo,
                     "pool": pool, "exposure_free_top": free}  # fmt: skip
            m = bp._evaluate_cached(model, ranked_lists, fold, knobs)
            row = {
                "variant": spec,
                **knobs,
                **m,
                "ndcg_ratio": m["ndcg@10"] / ref["ndcg@10"],
                "oon_ratio": (m["oon_hit_rate@10"] or 0) / ref["oon_hit_rate@10"],
                "coverage_ratio": m["coverage@10"] / ref["coverage@10"],
            }
            row["floors"] = {
                "oon_at_no_ndcg_loss": row["oon_ratio"] >= bp.FLOORS["oon_ratio"]
                and row["ndcg_ratio"] >= 1.0,
                "coverage": row["coverage_ratio"] >= 1.0,
                "ndcg_plus_3pct": m["ndcg@10"] >= (1 + bp.FLOORS["ndcg_gain"]) * ref["ndcg@10"],
            }
            result["grid"].append(row)
            print(f"  {spec} oon={oon} boost={boost} pop={pop} expo={expo} pool={pool} "
                  f"free={free} ndcg={m['ndcg@10']:.4f} ({row['ndcg_ratio']:.3f}x) "
                  f"oon_hr={m['oon_hit_rate@10']:.4f} ({row['oon_ratio']:.2f}x) "
                  f"cov={m['coverage@10']:.4f} ({row['coverage_ratio']:.2f}x)", flush=True)  # fmt: skip
        args.out.with_suffix(".json").write_text(_compact_json(result))
    args.out.with_suffix(".md").write_text(write_markdown(result))
    print(args.out.with_suffix(".md").read_text())


def _rounded(value: Any) -> Any:
    """Floats to 5 significant digits, recursively (the grid has hundreds of rows)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.5g}")
    return value


def _compact_json(result: dict[str, Any]) -> str:
    """The result with one grid row per line."""
    head = {k: v for k, v in result.items() if k != "grid"}
    rows = ",\n  ".join(json.dumps(_rounded(r), default=float) for r in result.get("grid", []))
    body = json.dumps(_rounded(head), indent=1, default=float)[:-2]
    return body + ',\n "grid": [\n  ' + rows + "\n ]\n}\n"


def _pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on all of NDCG@10, OON HitRate@10 and coverage@10."""
    keys = ("ndcg@10", "oon_hit_rate@10", "coverage@10")
    out = []
    for r in rows:
        dominated = any(
            all(o[k] >= r[k] for k in keys) and any(o[k] > r[k] for k in keys) for o in rows
        )
        if not dominated:
            out.append(r)
    return sorted(out, key=lambda r: -r["ndcg@10"])


def write_markdown(res: dict[str, Any]) -> str:
    ref = res["reference"]
    lines = [
        "## Out-of-network discovery vs NDCG vs coverage: Last.fm 2K, validation only (issue 5)",
        "",
        "- Command: `python benchmarks/oon_tradeoff.py`; " + res["protocol"] + f"; "
        f"{res['n_validation_users']} validation users. No test data was read.",
        f"- Reference (bench_pipeline's validation reference): `{ref['model']}` NDCG@10 "
        f"{ref['ndcg@10']:.4f}; coverage@10 {ref['coverage@10']:.4f} and OON HitRate@10 "
        f"{ref['oon_hit_rate@10']:.4f} (best among the tied models {', '.join(ref['ties'])}).",
        "- Floors on validation: OON HitRate@10 >= 1.5x the reference's at NDCG@10 >= the "
        "reference's; coverage@10 >= the reference's.",
        "",
        "### Candidate reach (share of held-out validation pairs among the user's candidates)",
        "",
        "| variant | mean candidates | all: candidates | top 100 | top 300 | "
        "out-of-network: candidates | top 100 | top 300 | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, v in res["variants"].items():
        r = v["reach"]
        lines.append(
            f"| {spec} | {r['mean_candidates']:.0f} | {r['all_cand']:.3f} | {r['all_top100']:.3f} "
            f"| {r['all_top300']:.3f} | {r['oon_cand']:.3f} | {r['oon_top100']:.3f} | "
            f"{r['oon_top300']:.3f} | {v['fit_s']:.0f} |"
        )
    head = (
        "| variant | oon_target | oon_boost | pop penalty | exposure (p, pool, free) | NDCG@10 | "
        "x ref | OON HR@10 | x ref | coverage@10 | x ref |"
    )
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"

    def row(r: dict[str, Any]) -> str:
        return (
            f"| {r['variant']} | {r['oon_target']} | {r['oon_boost']} | "
            f"{r['popularity_penalty']} | {r['exposure_penalty']}, {r['pool']}, "
            f"{r['exposure_free_top']} | {r['ndcg@10']:.4f} | {r['ndcg_ratio']:.3f} | "
            f"{r['oon_hit_rate@10']:.4f} | {r['oon_ratio']:.2f} | {r['coverage@10']:.4f} | "
            f"{r['coverage_ratio']:.2f} |"
        )

    grid = res["grid"]
    no_loss = [r for r in grid if r["ndcg_ratio"] >= 1.0]
    lines += [
        "",
        "### Best OON HitRate at no NDCG loss, per variant",
        "",
        head,
        sep,
    ]
    for spec in res["variants"]:
        cand = [r for r in no_loss if r["variant"] == spec]
        if cand:
            lines.append(row(max(cand, key=lambda r: r["oon_hit_rate@10"])))
    lines += ["", "### Best coverage at no NDCG loss, per variant", "", head, sep]
    for spec in res["variants"]:
        cand = [r for r in no_loss if r["variant"] == spec]
        if cand:
            lines.append(row(max(cand, key=lambda r: r["coverage@10"])))
    both = [r for r in grid if r["floors"]["oon_at_no_ndcg_loss"] and r["floors"]["coverage"]]
    at_oon = [r for r in grid if r["oon_ratio"] >= bp.FLOORS["oon_ratio"]]
    if at_oon:
        lines += ["", "### Highest NDCG@10 at OON HitRate >= 1.5x the reference's", "", head, sep]
        lines.append(row(max(at_oon, key=lambda r: r["ndcg@10"])))
    lines += [
        "",
        f"Settings meeting both floors on validation: {len(both)} of {len(grid)}; the OON floor "
        f"alone: {sum(r['floors']['oon_at_no_ndcg_loss'] for r in grid)}; coverage at no NDCG "
        f"loss: {sum(r['floors']['coverage'] for r in no_loss)}.",
        "",
        "### The trade-off curve (Pareto front over NDCG@10, OON HitRate@10, coverage@10)",
        "",
        head,
        sep,
        *[row(r) for r in _pareto(grid)],
        "",
        "Every setting: `grid` in the JSON.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
