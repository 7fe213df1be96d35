"""Stage-one latency: propose (every source) + merge + features for ONE user at a time.

Requirement (issue 5): the pipeline serves one user in under 30 ms p99 on the `small` preset,
in-process, on 2 cores. This measures the part PIPE-SOURCES owns (the ranker, re-ranking and
explanations come on top, measured by bench_pipeline.py).

    .venv/bin/python benchmarks/bench_sources_latency.py                    # small preset
    .venv/bin/python benchmarks/bench_sources_latency.py --preset tiny --users 200

Generates the preset (seed 0) into a temporary directory unless --data names a platform
directory, fits every source and the feature builder on the whole log (fit times reported),
then times single-user requests for a random sample of users (plus cold users with interests
only). Requests run with BLAS limited to one thread (`--blas-threads`), as an in-process server
on 2 cores should: a one-user matrix product spread over threads that compete with other
requests is several times slower (measured: iALS scoring 16 ms vs 0.5 ms under load), and
setting the limit per call costs about 5 ms, so it belongs at process start.
Writes benchmarks/results/sources_latency.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serendip.data.loaders import load_platform
from serendip.data.synthetic import generate_platform
from serendip.pipeline.candidates import UserContext
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.features import FeatureBuilder
from serendip.pipeline.merge import merge_proposals
from serendip.pipeline.sources import SOURCES, make_source

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

N_PER_SOURCE = 100
QUOTAS = {name: 60 for name in SOURCES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--data", type=Path, default=None, help="an existing platform directory")
    ap.add_argument("--users", type=int, default=500, help="users timed (one at a time)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1, help="0 = library default")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.blas_threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or generate_platform(args.preset, seed=args.seed, out=Path(tmp) / "p")
        ds = load_platform(data)
    print(ds, flush=True)

    sources = {name: make_source(name) for name in SOURCES}
    fit_s: dict[str, float] = {}
    for name, src in sources.items():
        t = time.perf_counter()
        src.fit(ds)
        fit_s[name] = time.perf_counter() - t
        print(f"fit {name}: {fit_s[name]:.1f} s", flush=True)
    fb = FeatureBuilder(list(sources))
    t = time.perf_counter()
    fb.fit(ds)
    fit_s["features"] = time.perf_counter() - t

    rng = np.random.default_rng(args.seed)
    users = rng.choice(ds.users.ids, size=min(args.users, ds.n_users), replace=False)
    contexts = contexts_from_dataset(ds, list(users))
    cold = [
        UserContext(
            f"new-{j}",
            -1,
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
            c.interests,
            c.now,
        )
        for j, c in enumerate(contexts[:50])
    ]

    def one(ctx: UserContext) -> tuple[float, float, dict[str, float], int]:
        per: dict[str, float] = {}
        cpu = time.thread_time()
        start = time.perf_counter()
        props = {}
        for name, src in sources.items():
            t0 = time.perf_counter()
            props[name] = src.propose_batch([ctx], N_PER_SOURCE)
            per[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = merge_proposals(props, 1, QUOTAS)
        per["merge"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fb.build(frame, [ctx])
        per["features"] = time.perf_counter() - t0
        return time.perf_counter() - start, time.thread_time() - cpu, per, len(frame)

    for c in contexts[:20]:  # warm-up
        one(c)
    results: dict[str, Any] = {}
    for label, ctxs in (("warm users", contexts), ("cold users (interests only)", cold)):
        totals, cpus, sizes = [], [], []
        parts: dict[str, list[float]] = {}
        for c in ctxs:
            total, cpu, per, size = one(c)
            totals.append(total * 1000)
            cpus.append(cpu * 1000)
            sizes.append(size)
            for k, v in per.items():
                parts.setdefault(k, []).append(v * 1000)
        arr = np.asarray(totals)
        results[label] = {
            "n": len(ctxs),
            "p50_ms": float(np.percentile(arr, 50)),
            "p95_ms": float(np.percentile(arr, 95)),
            "p99_ms": float(np.percentile(arr, 99)),
            "cpu_p50_ms": float(np.percentile(cpus, 50)),
            "cpu_p99_ms": float(np.percentile(cpus, 99)),
            "mean_candidates": float(np.mean(sizes)),
            "parts_p50_ms": {k: float(np.percentile(v, 50)) for k, v in parts.items()},
            "parts_p99_ms": {k: float(np.percentile(v, 99)) for k, v in parts.items()},
        }
        print(label, json.dumps(results[label], indent=1), flush=True)

    out = {
        "dataset": repr(ds),
        "machine": f"{platform.machine()} {platform.processor()} python {sys.version.split()[0]}",
        "n_per_source": N_PER_SOURCE,
        "blas_threads": args.blas_threads,
        "load_average_after": list(os.getloadavg()),
        "quotas": QUOTAS,
        "fit_seconds": fit_s,
        "latency": results,
    }
    if args.no_write:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sources_latency.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# Stage-one latency: propose (all sources) + merge + features, one user per request",
        "",
        f"Dataset: {ds!r}; {N_PER_SOURCE} proposals per source, quota 60 each. "
        f"Machine: {out['machine']}, BLAS threads {args.blas_threads}, load average after the "
        f"run {out['load_average_after'][0]:.1f} (a shared 2-core machine: p99 includes waits "
        "for the CPU). Written by `benchmarks/bench_sources_latency.py`.",
        "",
        "Wall-clock time per request, and the CPU time of the request's thread (what it costs "
        "without waiting for a core other processes hold).",
        "",
        "| users | n | p50 ms | p95 ms | p99 ms | CPU p50 ms | CPU p99 ms | candidates |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        lines.append(
            f"| {label} | {r['n']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['cpu_p50_ms']:.1f} | {r['cpu_p99_ms']:.1f} | "
            f"{r['mean_candidates']:.0f} |"
        )
    lines += ["", "Per part, warm users (p50 / p99 ms):", ""]
    lines += ["| part | p50 | p99 |", "|---|---|---|"]
    w = results["warm users"]
    for k in w["parts_p50_ms"]:
        lines.append(f"| {k} | {w['parts_p50_ms'][k]:.2f} | {w['parts_p99_ms'][k]:.2f} |")
    lines += ["", "Fit seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in fit_s.items()), ""]
    (RESULTS / "sources_latency.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
