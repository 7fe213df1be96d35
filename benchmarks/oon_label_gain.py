"""Last.fm 2K, validation only: the ranker's out-of-network label gain (`ranker.oon_label_gain`)
against re-ranking boosts, for issue 5's discovery floor (OON HitRate@10 >= 1.5x the best single
model's at no NDCG@10 loss, with NDCG@10 +3% over it).

The pipeline is bench_pipeline's Last.fm choice (collaborative user-ease + ials, 7-leaf bagged
rankers) with optional ranker changes (`--ranker` JSON over it: more label users per window,
more windows, deeper trees); for each gain it is fitted once on bench_pipeline's validation fold
(carved from the benchmark's train part; test data is never read) and the re-ranking knobs are
swept without refitting. Each run writes `benchmarks/results/oon-label-gain-lastfm[-TAG].json`;
the markdown `oon-label-gain-lastfm.md` tabulates every run's JSON found there.

    python benchmarks/oon_label_gain.py [--gains 0,1,2,3] [--ranker JSON --tag TAG]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import bench_pipeline as bp

OUT = bp.RESULTS_DIR / "oon-label-gain-lastfm"
POP = (0.0, 0.3, 0.5)
BOOST = (0.0, 0.05, 0.1, 0.2)
#: bench_pipeline's Last.fm choice of stop 10 (7-leaf rankers); `--ranker` goes over it.
BASE_RANKER = {**bp.LASTFM_DEEPER, "ranker.num_leaves": 7, "ranker.colsample_bytree": 0.5}


def run(gains: list[int], ranker_extra: dict[str, Any], tag: str) -> dict[str, Any]:
    ds = bp._load("lastfm-2k", Path("/tmp"))
    split = bp._split("lastfm-2k", ds)
    fold = bp._val_folds("lastfm-2k", split.train)[0]
    tuned = bp._params("lastfm-2k")
    refs = {c: bp._validate_single(c, tuned.get(c, {}), [fold])[0] for c in ("user-ease", "ials")}
    ref_name = max(refs, key=lambda c: refs[c]["ndcg@10"])
    ref = refs[ref_name]
    ranker = {**BASE_RANKER, **ranker_extra}
    rows: list[dict[str, Any]] = []
    for gain in gains:
        params = bp._pipeline_params(
            "user-ease",
            tuned.get("user-ease", {}),
            ("ials", tuned.get("ials", {})),
            "random",  # Last.fm's listens carry no timestamps: every label split is random
            {**ranker, "ranker.oon_label_gain": gain},
        )
        model, fit_s = bp._fit("pipeline", params, fold.train)
        print(f"[{tag}] gain {gain}: fit {fit_s:.0f}s, {model.report_.n_label_users} label users, "
              f"{model.report_.n_rows} rows", flush=True)  # fmt: skip
        ranked = bp._ranked(model, bp._test_users(fold))
        for pop in POP:
            for boost in BOOST:
                knobs = dict(
                    mmr_lambda=1.0, oon_target=None, oon_boost=boost, popularity_penalty=pop,
                    tail_target=None, exposure_penalty=0.0, pool=100, exposure_free_top=0,
                )  # fmt: skip
                m = bp._evaluate_cached(model, ranked, fold, knobs)
                row = {"tag": tag, "oon_label_gain": gain, "popularity_penalty": pop,
                       "oon_boost": boost, "fit_s": fit_s, **m}  # fmt: skip
                row["ndcg_ratio"] = m["ndcg@10"] / ref["ndcg@10"]
                row["oon_ratio"] = m["oon_hit_rate@10"] / ref["oon_hit_rate@10"]
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    return {"tag": tag, "ranker": ranker, "reference": {"model": ref_name, **ref}, "rows": rows}


def write_markdown() -> str:
    runs = [json.loads(p.read_text()) for p in sorted(OUT.parent.glob(OUT.name + "*.json"))]
    runs = [r for r in runs if "rows" in r]
    ref = runs[0]["reference"]
    lines = [
        "## Out-of-network label gain vs re-ranking boost (Last.fm 2K, validation; issue 5)",
        "",
        "- Command: `python benchmarks/oon_label_gain.py --gains G --ranker JSON --tag TAG` per "
        "run (the runs below); one validation fold carved from bench_pipeline's train part, "
        "test never read.",
        f"- Reference (best single model on this fold): {ref['model']}, NDCG@10 "
        f"{ref['ndcg@10']:.4f}, OON HitRate@10 {ref['oon_hit_rate@10']:.4f}. Floors: NDCG >= "
        "1.03x and OON >= 1.5x together.",
        "",
        "Runs (ranker settings over bench_pipeline's Last.fm base):",
        "",
    ]
    for r in runs:
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(
            f"- `{r.get('tag', 'base')}`: {json.dumps(r.get('ranker', BASE_RANKER))}{note}"
        )
    lines += [
        "",
        "Best OON HitRate per run and gain at NDCG >= 1.00x / >= 1.03x of the reference:",
        "",
        "| run | label gain | OON x ref @ NDCG>=1.00 (pop, boost) | OON x ref @ NDCG>=1.03 (pop, boost) "
        "| best NDCG x ref |",
        "|---|---:|---|---|---:|",
    ]
    for r in runs:
        for gain in sorted({row["oon_label_gain"] for row in r["rows"]}):
            rows = [row for row in r["rows"] if row["oon_label_gain"] == gain]

            def best_at(floor: float, rows: list[dict[str, Any]] = rows) -> str:
                ok = [row for row in rows if row["ndcg_ratio"] >= floor]
                if not ok:
                    return "-"
                b = max(ok, key=lambda row: row["oon_ratio"])
                return (f"{b['oon_ratio']:.2f}x ({b['popularity_penalty']}, {b['oon_boost']}; "
                        f"NDCG {b['ndcg_ratio']:.3f}x)")  # fmt: skip

            top = max(row["ndcg_ratio"] for row in rows)
            lines.append(
                f"| {r.get('tag', 'base')} | {gain} | {best_at(1.0)} | {best_at(1.03)} | {top:.3f} |"
            )
    lines += [
        "",
        "Every setting:",
        "",
        "| run | label gain | popularity penalty | OON boost | NDCG@10 | x ref | OON HitRate@10 "
        "| x ref | coverage@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        for row in r["rows"]:
            lines.append(
                f"| {r.get('tag', 'base')} | {row['oon_label_gain']} | "
                f"{row['popularity_penalty']} | {row['oon_boost']} | {row['ndcg@10']:.4f} | "
                f"{row['ndcg_ratio']:.3f} | {row['oon_hit_rate@10']:.4f} | "
                f"{row['oon_ratio']:.2f} | {row['coverage@10']:.4f} |"
            )
    text = "\n".join(lines) + "\n"
    OUT.with_suffix(".md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gains", default="0,1,2,3")
    ap.add_argument("--ranker", default="{}", help="JSON of ranker.* settings over the base")
    ap.add_argument("--tag", default="")
    ap.add_argument("--note", default="", help="what the run changes, for the table")
    ap.add_argument("--markdown-only", action="store_true")
    args = ap.parse_args()
    if not args.markdown_only:
        t0 = time.perf_counter()
        tag = args.tag or "base"
        result = run([int(g) for g in args.gains.split(",")], json.loads(args.ranker), tag)
        if args.note:
            result["note"] = args.note
        result["wall_s"] = time.perf_counter() - t0
        path = Path(f"{OUT}-{args.tag}.json" if args.tag else f"{OUT}.json")
        path.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(write_markdown())


if __name__ == "__main__":
    main()
