"""Tune the weighted hybrid's member weights on a validation split carved from train (never on
test) and record them in benchmarks/model_params.json, where bench_models.py reads them.

    python benchmarks/tune_hybrid.py --dataset lastfm-2k --members ease,socialmf,rp3beta

Members take their parameters for that dataset from model_params.json (or their defaults).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_models import LOADERS, PARAMS_FILE, SHARED, _params, _save_params
from serendip.evaluation import random_split, validation_split
from serendip.models.hybrid import WeightedHybrid
from serendip.models.hybrid._members import NORMALISATIONS


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", required=True, choices=sorted(LOADERS))
    ap.add_argument("--members", required=True, help="comma-separated registry names")
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset directory (default ../shared/data/<dataset>)",
    )
    ap.add_argument("--grid-steps", type=int, default=4)
    ap.add_argument("--normalization", default="minmax", choices=NORMALISATIONS)
    ap.add_argument(
        "--activity-bounds",
        default="",
        help="comma-separated history lengths (full-train scale): one weight vector per bucket",
    )
    args = ap.parse_args()
    ds = LOADERS[args.dataset](args.data or SHARED / args.dataset)
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    val = validation_split(split.train, "random", test_fraction=0.2, seed=42, min_interactions=5)
    params = _params(args.dataset)
    members = {m: params.get(m, {}) for m in args.members.split(",")}
    model = WeightedHybrid({"members": members, "normalization": args.normalization})
    # bounds are given at full-train scale; validation histories are 80% as long
    bounds = [round(0.8 * int(b)) for b in args.activity_bounds.split(",") if b]
    result = model.tune_weights(
        val.train, val.test, k=10, grid_steps=args.grid_steps, activity_bounds=bounds or None
    )
    weights = {k: float(v) for k, v in result.weights.items()}
    params["weighted-hybrid"] = {
        "members": members,
        "weights": weights,
        "normalization": args.normalization,
    }
    if bounds:
        params["weighted-hybrid"]["activity_bounds"] = [
            int(b) for b in args.activity_bounds.split(",")
        ]
        params["weighted-hybrid"]["activity_weights"] = [dict(w) for w in result.activity_weights]
    _save_params(args.dataset, params)
    print(
        json.dumps(
            {"dataset": args.dataset, "weights": weights, "validation": str(result)}, default=str
        )
    )
    print(f"recorded in {PARAMS_FILE}")


if __name__ == "__main__":
    main()
