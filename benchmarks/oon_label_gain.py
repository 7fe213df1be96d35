"""Last.fm 2K, validation only: the ranker's out-of-network label gain (`ranker.oon_label_gain`)
against re-ranking boosts, for issue 5's discovery floor (OON HitRate@10 >= 1.5x the best single
model's at no NDCG@10 loss).

The pipeline is bench_pipeline's Last.fm choice (collaborative user-ease + ials, 7-leaf bagged
rankers); for each gain it is fitted once on bench_pipeline's validation fold (carved from the
benchmark's train part; test data is never read) and the re-ranking knobs are swept without
refitting. Writes `benchmarks/results/oon-label-gain-lastfm.md|json`.

    python benchmarks/oon_label_gain.py [--gains 0,1,2,3]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import bench_pipeline as bp

OUT = bp.RESULTS_DIR / "oon-label-gain-lastfm"
POP = (0.0, 0.3)
BOOST = (0.0, 0.1, 0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gains", default="0,1,2,3")
    args = ap.parse_args()
    ds = bp._load("lastfm-2k", Path("/tmp"))
    split = bp._split("lastfm-2k", ds)
    fold = bp._val_folds("lastfm-2k", split.train)[0]
    tuned = bp._params("lastfm-2k")
    refs = {c: bp._validate_single(c, tuned.get(c, {}), [fold])[0] for c in ("user-ease", "ials")}
    ref_name = max(refs, key=lambda c: refs[c]["ndcg@10"])
    ref = refs[ref_name]
    ranker = {**bp.LASTFM_DEEPER, "ranker.num_leaves": 7, "ranker.colsample_bytree": 0.5}
    rows: list[dict[str, Any]] = []
    for gain in (int(g) for g in args.gains.split(",")):
        params = bp._pipeline_params(
            "user-ease",
            tuned.get("user-ease", {}),
            ("ials", tuned.get("ials", {})),
            "global",
            {**ranker, "ranker.oon_label_gain": gain},
        )
        model, _ = bp._fit("pipeline", params, fold.train)
        ranked = bp._ranked(model, bp._test_users(fold))
        for pop in POP:
            for boost in BOOST:
                knobs = dict(
                    mmr_lambda=1.0, oon_target=None, oon_boost=boost, popularity_penalty=pop,
                    tail_target=None, exposure_penalty=0.0, pool=100, exposure_free_top=0,
                )  # fmt: skip
                m = bp._evaluate_cached(model, ranked, fold, knobs)
                row = {"oon_label_gain": gain, "popularity_penalty": pop, "oon_boost": boost, **m}
                row["ndcg_ratio"] = m["ndcg@10"] / ref["ndcg@10"]
                row["oon_ratio"] = m["oon_hit_rate@10"] / ref["oon_hit_rate@10"]
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    result = {"reference": {"model": ref_name, **ref}, "rows": rows}
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    lines = [
        "## Out-of-network label gain vs re-ranking boost (Last.fm 2K, validation; issue 5)",
        "",
        f"- Command: `python benchmarks/oon_label_gain.py --gains {args.gains}`; one validation "
        "fold carved from bench_pipeline's train part, test never read.",
        f"- Reference (best single model on this fold): {ref_name}, NDCG@10 "
        f"{ref['ndcg@10']:.4f}, OON HitRate@10 {ref['oon_hit_rate@10']:.4f}. Floor: OON >= 1.5x "
        "at NDCG >= 1.0x.",
        "",
        "| label gain | popularity penalty | OON boost | NDCG@10 | x ref | OON HitRate@10 | x ref "
        "| coverage@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['oon_label_gain']} | {r['popularity_penalty']} | {r['oon_boost']} | "
            f"{r['ndcg@10']:.4f} | {r['ndcg_ratio']:.3f} | {r['oon_hit_rate@10']:.4f} | "
            f"{r['oon_ratio']:.2f} | {r['coverage@10']:.4f} |"
        )
    at_no_loss = [r for r in rows if r["ndcg_ratio"] >= 1.0]
    best = max(at_no_loss, key=lambda r: r["oon_ratio"]) if at_no_loss else None
    if best:
        lines += [
            "",
            f"Best OON at no NDCG loss: {best['oon_ratio']:.2f}x (gain {best['oon_label_gain']}, "
            f"popularity penalty {best['popularity_penalty']}, boost {best['oon_boost']}; "
            f"NDCG {best['ndcg_ratio']:.3f}x).",
        ]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
