"""Deep models on an accelerator: fit NeuMF, Mult-VAE, RecVAE and SASRec on MovieLens 100K with
`device="cuda"` (and, for comparison on the same machine, `device="cpu"`), same protocol as
bench_models.py, and write a table. CI never has a GPU: where none is present the script says
so and stops, and the last table stays (`make bench` skips it the same way).

    python benchmarks/bench_deep_device.py [--data ../shared/data/ml-100k] [--out benchmarks/results]

Writes deep-device.md / deep-device.json into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SERENDIP_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=SHARED / "ml-100k", help="MovieLens 100K")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--models", default="neumf,multvae,recvae,sasrec")
    ap.add_argument("--devices", default="cuda,cpu")
    args = ap.parse_args()

    import torch

    if "cuda" in args.devices.split(",") and not torch.cuda.is_available():
        print(
            f"skipped: no CUDA device (torch.cuda.is_available() is False); "
            f"{args.out / 'deep-device.md'} keeps the last run's table"
        )
        return
    from serendip.data.loaders import load_movielens
    from serendip.evaluation import evaluate_recommendations, random_split
    from serendip.models import create_model

    ds = load_movielens(args.data)
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    machine = (
        f"{gpu}; {torch.get_num_threads()} torch CPU threads; torch {torch.__version__}; "
        f"Python {platform.python_version()}"
    )
    rows: list[dict[str, Any]] = []
    # devices outer: every model on the GPU first, so a time limit cuts CPU rows, not GPU ones
    for device in args.devices.split(","):
        for name in args.models.split(","):
            t0 = time.perf_counter()
            model = create_model(name, {"device": device}).fit(split.train)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            recs = model.recommend(users, 10)
            rec_s = time.perf_counter() - t0
            ndcg = evaluate_recommendations(recs, split.train, split.test, k=10).metrics["ndcg@10"]
            row = {
                "model": name,
                "device": device,
                "ndcg@10": ndcg,
                "fit_s": fit_s,
                "recommend_s": rec_s,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            _write(args.out, machine, rows)


def _write(out: Path, machine: str, rows: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "deep-device.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n"
    )
    lines = [
        "# Deep models on a GPU (device check)",
        "",
        "- Command: `python benchmarks/bench_deep_device.py`",
        f"- Machine: the lent accelerator machine: {machine}. Not the 2-core reference machine: "
        "its CPU rows use that machine's CPU.",
        "- Protocol: MovieLens 100K, random 80/20 per user (seed 42), default (tuned) parameters, "
        "NDCG@10 over full rankings.",
        "",
        "| model | device | NDCG@10 | fit s | recommend s (all test users) |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['device']} | {r['ndcg@10']:.4f} | {r['fit_s']:.1f} | {r['recommend_s']:.2f} |"
        for r in rows
    ]
    (out / "deep-device.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
