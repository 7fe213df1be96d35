"""In-process cost of one recommendation request through `ModelRuntime` (no HTTP), split by the
serving fast path's cases: uncached (the whole pipeline), cache miss (the same, stored), cache
hit (filters, re-ranking, backfill and cached explanations only), with filters, shared cold
start, and the uncached path without the one-thread BLAS/OpenMP limit.

    python benchmarks/bench_runtime_cache.py --preset small

Uses the pipeline artifact `benchmarks/bench_serve.py` fitted for the preset
(`bench-out/serve-<preset>-pipeline/artifacts/`, the newest), or `--artifact DIR`. Writes
`benchmarks/results/serve_cache.md` and `.json`. CPU time is this process's
(`time.process_time`), per request; wall time includes waiting for a core on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "serve_cache.md"


def _timed(label: str, users: list[str], fn: Callable[[str], Any]) -> dict[str, Any]:
    cpu, wall = [], []
    for u in users:
        c, w = time.process_time(), time.perf_counter()
        fn(u)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    c_ms, w_ms = np.array(cpu) * 1000.0, np.array(wall) * 1000.0
    row = {
        "case": label,
        "requests": len(users),
        "cpu_mean_ms": round(float(c_ms.mean()), 2),
        "cpu_p50_ms": round(float(np.percentile(c_ms, 50)), 2),
        "cpu_p99_ms": round(float(np.percentile(c_ms, 99)), 2),
        "wall_p50_ms": round(float(np.percentile(w_ms, 50)), 2),
        "wall_p99_ms": round(float(np.percentile(w_ms, 99)), 2),
    }
    print(row, flush=True)
    return row


def _close(a: list[Any], b: list[Any]) -> bool:
    """Same items and scores, explanations equal up to float32 rounding of their numbers."""

    def same(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return bool(np.isclose(x, y, rtol=1e-5, atol=1e-7))
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list | tuple) and isinstance(y, list | tuple):
            return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y, strict=True))
        return bool(x == y)

    return len(a) == len(b) and all(
        r.item == q.item and r.score == q.score and same(r.explanation, q.explanation)
        for r, q in zip(a, b, strict=True)
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--artifact", type=Path, default=None)
    ap.add_argument("--users", type=int, default=300, help="distinct users per case")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from serendip.service.runtime import ModelRuntime

    artifact = args.artifact
    if artifact is None:
        found = sorted(
            (ROOT / "bench-out" / f"serve-{args.preset}-pipeline" / "artifacts").glob("*")
        )
        if not found:
            raise SystemExit(
                f"error: no pipeline artifact for preset '{args.preset}'; run "
                f"benchmarks/bench_serve.py --preset {args.preset} first or pass --artifact"
            )
        artifact = found[-1]
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    run_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # the per-user cache alone (no precomputed lists: a miss runs the pipeline's expensive half)
    rt = ModelRuntime(precompute=False)
    rt.load(artifact, "bench")
    ref = ModelRuntime(cache_size=0)
    ref.load(artifact, "bench")
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    model: Any = snap.model
    n = len(model.users_)
    users = [str(model.users_.id(i)) for i in range(0, n, max(1, n // args.users))][: args.users]
    cats = sorted({str(c) for c in model.item_category_ if str(c)})[:2]
    rows = []
    for explain in (True, False):
        tag = "explain" if explain else "no explain"
        rows.append(
            _timed(f"uncached ({tag})", users, partial(ref.recommend, k=10, explain=explain))
        )
        snap.cache._entries.clear()
        rows.append(_timed(f"miss ({tag})", users, partial(rt.recommend, k=10, explain=explain)))
        rows.append(_timed(f"hit ({tag})", users, partial(rt.recommend, k=10, explain=explain)))
    filtered: list[tuple[dict[str, Any], str]] = [
        ({"categories": cats}, f"hit, categories={cats}"),
        ({"exclude": ["x", "y", "z"]}, "hit, exclude 3 items"),
    ]
    for kw, label in filtered:
        for u in users:  # first pass explains the items the filter brings in
            rt.recommend(u, 10, explain=True, **kw)
        rows.append(
            _timed(
                f"{label} (explain)",
                users,
                partial(rt.recommend, k=10, explain=True, **kw),
            )
        )
    cold = [f"cold-{i}" for i in range(len(users))]
    rows.append(
        _timed(
            "cold users, shared entry (explain)", cold, lambda u: rt.recommend(u, 10, explain=True)
        )
    )
    with threadpool_limits(limits=os.cpu_count()):
        rows.append(
            _timed(
                f"uncached, BLAS/OpenMP at {os.cpu_count()} threads (explain)",
                users[:100],
                lambda u: ref.recommend(u, 10, explain=True),
            )
        )
    rows.append(
        _timed(
            "uncached, 1 thread (explain)",
            users[:100],
            lambda u: ref.recommend(u, 10, explain=True),
        )
    )
    # precomputed lists (serendip.serving.precompute): a user's first request
    from serendip.serving.precompute import build_ranked_lists

    pre = ModelRuntime(build_in_background=False)
    pre.load(artifact, "bench")
    psnap = pre.snapshot
    assert psnap is not None and psnap.lists is not None
    picks = np.array([model.users_.index(u) for u in users])
    wall, cpu = time.perf_counter(), time.process_time()
    psnap.lists.lists = build_ranked_lists(psnap.serving, users=picks)
    build = ((time.perf_counter() - wall) / len(picks), (time.process_time() - cpu) / len(picks))
    psnap.lists.state = "ready"
    for explain in (True, False):
        tag = "explain" if explain else "no explain"
        assert psnap.cache is not None
        psnap.cache._entries.clear()
        rows.append(
            _timed(
                f"first request, precomputed lists ({tag})",
                users,
                partial(pre.recommend, k=10, explain=explain),
            )
        )
    same_pre = sum(
        pre.recommend(u, 10, explain=True) == ref.recommend(u, 10, explain=True) for u in users
    )
    close_pre = sum(
        _close(pre.recommend(u, 10, explain=True), ref.recommend(u, 10, explain=True))
        for u in users
    )
    # bench_serve's traffic: 90% known users drawn uniformly, 10% new cold users
    rng = random.Random(0)
    all_users = [str(u) for u in model.users_.ids]
    snap.cache._entries.clear()
    mix = [
        rng.choice(all_users) if rng.random() < 0.9 else f"c-{rng.randrange(10**9)}"
        for _ in range(2000)
    ]
    before = snap.cache.stats()
    rows.append(
        _timed(
            "bench_serve mix, 2000 requests from empty (explain)",
            mix,
            lambda u: rt.recommend(u, 10, explain=True),
        )
    )
    after = snap.cache.stats()
    hits = after["hits"] - before["hits"]
    misses = after["misses"] - before["misses"]
    same = sum(
        rt.recommend(u, 10, explain=True) == ref.recommend(u, 10, explain=True) for u in users[:50]
    )
    result = {
        "command": "python benchmarks/bench_runtime_cache.py " + " ".join(argv or []),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "run_at": run_at,
        "load_before": load_before,
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "preset": args.preset,
        "artifact": str(artifact.relative_to(ROOT) if artifact.is_relative_to(ROOT) else artifact),
        "n_users": n,
        "n_items": len(model.items_),
        "rows": rows,
        "mix_hit_rate": round(hits / max(1, hits + misses), 3),
        "identical_to_uncached": f"{same}/50",
        "lists_identical_to_uncached": f"{same_pre}/{len(users)}",
        "lists_equal_to_uncached_up_to_float32": f"{close_pre}/{len(users)}",
        "lists_build_ms_per_user": {
            "wall": round(build[0] * 1000, 2),
            "cpu": round(build[1] * 1000, 2),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Serving fast path: in-process cost per request (`ModelRuntime.recommend`, k=10)",
        "",
        f"Command: `{result['command'].strip()}`  ",
        f"Machine: {result['machine']}  ",
        f"Run at: {run_at}; load average at start {load_before}, at end {result['load_after']}  ",
        f"Model: `pipeline` artifact `{result['artifact']}` ({n:,} users, {len(model.items_):,} items)",
        "",
        "Miss: context, sources, merge, features, ranker, then the per-request half. Hit: the per-request"
        " half only -- filters (seen, deleted, categories, authors, exclude), MMR re-ranking,"
        " backfill, explanations cached per item. CPU ms is this process's CPU time per request.",
        "",
        "| case | requests | CPU mean ms | CPU p50 ms | CPU p99 ms | wall p50 ms | wall p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['requests']} | {r['cpu_mean_ms']} | {r['cpu_p50_ms']} | "
            f"{r['cpu_p99_ms']} | {r['wall_p50_ms']} | {r['wall_p99_ms']} |"
        )
    lines += [
        "",
        f"Cached answers identical to the uncached pipeline (items, scores, explanations): "
        f"{same}/50 users.  ",
        f"Hit rate of bench_serve's traffic mix (2000 requests from an empty cache, uniform over "
        f"{n:,} users plus 10% new users, per-user cache alone): {result['mix_hit_rate']:.1%}.  ",
        f"Precomputed lists (`serendip.serving.precompute`, built in batch with the model): "
        f"{result['lists_build_ms_per_user']['cpu']} ms CPU per user to build "
        f"({result['lists_build_ms_per_user']['wall']} ms wall); first requests served from "
        f"them identical to the uncached pipeline: {same_pre}/{len(users)} users; the same "
        f"items, scores and explanations up to float32 rounding: {close_pre}/{len(users)} "
        f"(the lists are ranked in batches, and a batched matrix product sums in another "
        f"order than one user's: the last bits of a source's score, shown as an explanation's "
        f"evidence weight, may differ).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
