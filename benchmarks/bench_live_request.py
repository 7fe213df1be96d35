"""In-process cost of a recommendation for users with live events since the fit (`pipeline`).

A live event moves the user's request time past the newest fitted event; every such user takes
the full pipeline path (context with the live events, sources, features, ranker, re-ranking,
explanations). Events here carry distinct wall-clock timestamps, as real traffic does (the HTTP
load benchmark's ingested events share one timestamp per run).

    python benchmarks/bench_live_request.py   # the newest bench-out/serve-platform-pipeline artifact
    python benchmarks/bench_live_request.py --artifact DIR

The default artifact is the one `bench_serve.py` (platform preset) fitted; without one the script
says so and stops (`make bench` runs it after the serving benchmark).

Writes benchmarks/results/live_request.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from serendip.service.runtime import ModelRuntime
from serendip.store import EventIn

RESULTS = Path(__file__).resolve().parent / "results"
ARTIFACTS = (
    Path(__file__).resolve().parents[1] / "bench-out" / "serve-platform-pipeline" / "artifacts"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--artifact",
        type=Path,
        default=None,
        help=f"a saved pipeline model (default: newest in {ARTIFACTS})",
    )
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.artifact is None:
        found = sorted(ARTIFACTS.glob("*")) if ARTIFACTS.is_dir() else []
        if not found:
            raise SystemExit(
                f"error: no pipeline artifact under {ARTIFACTS}; run benchmarks/bench_serve.py "
                "(platform preset) first or pass --artifact"
            )
        args.artifact = found[-1]
    rt = ModelRuntime(build_in_background=False)
    t0 = time.perf_counter()
    rt.load(args.artifact, "bench")
    load_s = time.perf_counter() - t0
    snap = rt.snapshot
    assert snap is not None
    model = snap.model
    rng = np.random.default_rng(args.seed)
    n = args.users + 20
    users = [model.users_.id(int(u)) for u in rng.choice(len(model.users_), n, replace=False)]
    items = [model.items_.id(int(i)) for i in rng.choice(len(model.items_), 2 * n)]
    now = time.time()
    rt.on_events(
        [
            EventIn(f"live-{j}", users[j % n], items[j], "view", now - 100.0 + j * 0.01)
            for j in range(2 * n)
        ]
    )
    for u in users[:20]:  # warm-up
        rt.recommend(u, 10, explain=True)
    wall, cpu = [], []
    for u in users[20:]:
        w, c = time.perf_counter(), time.process_time()
        rt.recommend(u, 10, explain=True)
        wall.append(1000 * (time.perf_counter() - w))
        cpu.append(1000 * (time.process_time() - c))
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_live_request.py --artifact " + str(args.artifact),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": os.getloadavg(),
        "n_users_model": len(model.users_),
        "n_items_model": len(model.items_),
        "load_s": load_s,
        "n_requests": len(wall),
        "wall_ms": {"p50": float(np.percentile(wall, 50)), "p99": float(np.percentile(wall, 99))},
        "cpu_ms": {
            "p50": float(np.percentile(cpu, 50)),
            "p99": float(np.percentile(cpu, 99)),
            "mean": float(np.mean(cpu)),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_request.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Live users: in-process cost of one recommendation (`ModelRuntime.recommend`, k=10, explanations)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; run at {result['run_at']}; load average "
        + " ".join(f"{x:.1f}" for x in result["load_average"]),
        "",
        f"Model: {result['n_users_model']:,} users, {result['n_items_model']:,} items (loaded in "
        f"{load_s:.1f} s). {result['n_requests']} users, each with two live events at distinct "
        "wall-clock times after the newest fitted event, so every request takes the full "
        "pipeline path.",
        "",
        "| | p50 | p99 | mean |",
        "|---|---:|---:|---:|",
        f"| CPU ms | {result['cpu_ms']['p50']:.2f} | {result['cpu_ms']['p99']:.2f} | "
        f"{result['cpu_ms']['mean']:.2f} |",
        f"| wall ms | {result['wall_ms']['p50']:.2f} | {result['wall_ms']['p99']:.2f} | |",
        "",
    ]
    (RESULTS / "live_request.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
