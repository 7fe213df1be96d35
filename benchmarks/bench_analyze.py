"""Benchmark `serendip analyze` at platform scale (100K users, 1M items, 20M interactions).

Times loading (when the platform loader exists), `analyze_dataset` (per step) and
`write_report`, and records peak memory. Writes benchmarks/results/analyze.md and .json.

    .venv/bin/python benchmarks/bench_analyze.py                      # platform preset, seed 0
    .venv/bin/python benchmarks/bench_analyze.py --platform-dir DIR   # an existing generate dir
    .venv/bin/python benchmarks/bench_analyze.py --numpy              # numpy-built stand-in

The platform directory is generated with `serendip.data.synthetic.generate_platform("platform",
seed=0, out=DIR)` when missing. Where the generator or the loaders are not importable, or with
`--numpy`, the script builds a Dataset of the same scale directly with NumPy (power-law
activity, popularity and follow graph, a year of timestamps, 1M items with text and tags) and
times the analysis on it; loading is then not part of the total, and the results say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from serendip.data.analysis import analyze_dataset, write_report
from serendip.data.dataset import (
    EVENT_CODES,
    Dataset,
    Interactions,
    ItemTable,
    SocialGraph,
    UserTable,
)
from serendip.data.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def numpy_platform(
    seed: int = 0,
    n_users: int = 100_000,
    n_items: int = 1_000_000,
    n_interactions: int = 20_000_000,
) -> Dataset:
    """A platform-scale Dataset built with NumPy: heavy-tailed activity, popularity and follow
    graph, a year of timestamps with a daily rhythm, item texts/tags/categories/authors, a few
    injected problems (bots, duplicates, pre-creation interactions) for the quality checks."""
    rng = np.random.default_rng(seed)
    t0 = 1_672_531_200.0  # 2023-01-01
    year = 365 * 86_400.0

    user_w = rng.lognormal(0.0, 1.2, n_users)
    user_w[rng.choice(n_users, 20, replace=False)] *= 400.0  # bots
    user = rng.choice(n_users, size=n_interactions, p=user_w / user_w.sum()).astype(np.int32)
    rank = rng.permutation(n_items) + 1.0
    item_w = rank**-0.9
    item = rng.choice(n_items, size=n_interactions, p=item_w / item_w.sum()).astype(np.int32)
    item_created = t0 + rng.uniform(-0.5, 1.0, n_items) * year
    day = np.floor(rng.uniform(0, 365, n_interactions))
    hour = rng.normal(19.0, 4.0, n_interactions) % 24
    ts = t0 + day * 86_400.0 + np.floor(hour * 3600.0)
    # Mostly after the item exists; ~0.1% before it (a data-quality finding).
    ts = np.where(
        (ts < item_created[item]) & (rng.random(n_interactions) > 0.001),
        item_created[item] + rng.uniform(0, 30 * 86_400.0, n_interactions),
        ts,
    )
    ts = np.floor(np.minimum(ts, t0 + year - 1.0))
    probs = np.array([0.70, 0.10, 0.12, 0.03, 0.05])
    event = rng.choice(5, size=n_interactions, p=probs).astype(np.int8)
    value = np.full(n_interactions, np.nan, dtype=np.float32)
    views = event == EVENT_CODES["view"]
    value[views] = rng.lognormal(3.0, 1.0, int(views.sum())).astype(np.float32)  # dwell seconds
    dup = rng.choice(n_interactions, 5_000, replace=False)
    inter = Interactions.build(
        np.concatenate([user, user[dup]]),
        np.concatenate([item, item[dup]]),
        np.concatenate([ts, ts[dup]]),
        np.concatenate([event, event[dup]]),
        np.concatenate([value, value[dup]]),
    )

    users = Vocabulary.from_unique(np.array([f"u{k}" for k in range(n_users)], dtype=object))
    items = Vocabulary.from_unique(np.array([f"i{k}" for k in range(n_items)], dtype=object))

    words = np.array([f"w{k}" for k in range(5000)], dtype=object)
    pool_size = 20_000
    texts = np.array(
        [" ".join(rng.choice(words, int(rng.integers(10, 80)))) for _ in range(pool_size)],
        dtype=object,
    )
    titles = np.array(
        [" ".join(rng.choice(words, int(rng.integers(2, 8)))) for _ in range(pool_size)],
        dtype=object,
    )
    tag_names = np.array([f"tag{k}" for k in range(2000)], dtype=object)
    tag_pool = np.empty(pool_size, dtype=object)
    tag_pool[:] = [
        tuple(rng.choice(tag_names, int(rng.integers(0, 6)), replace=False))
        for _ in range(pool_size)
    ]
    cats = np.array([f"cat{k}" for k in range(50)], dtype=object)
    pick = rng.integers(0, pool_size, n_items)
    author_idx = rng.choice(n_users, size=n_items, p=user_w / user_w.sum())
    text = texts[pick].copy()
    text[rng.random(n_items) < 0.05] = ""
    item_meta = ItemTable(
        title=titles[pick],
        text=text,
        tags=tag_pool[rng.integers(0, pool_size, n_items)],
        category=cats[rng.integers(0, 50, n_items)],
        author=users.ids[author_idx],
        created_at=item_created,
    )
    interests = np.empty(n_users, dtype=object)
    interests[:] = [
        tuple(rng.choice(cats, int(rng.integers(0, 4)), replace=False)) for _ in range(n_users)
    ]
    user_meta = UserTable(
        t0 - rng.uniform(0, 3 * year, n_users), interests, rng.random(n_users) < 0.05, {}
    )

    out_deg = np.minimum(rng.lognormal(3.0, 1.0, n_users).astype(np.int64), 5_000)
    pop = user_w**0.7
    follower = np.repeat(np.arange(n_users), out_deg)
    followee = rng.choice(n_users, size=len(follower), p=pop / pop.sum())
    keys = np.unique(follower.astype(np.int64) * n_users + followee)
    social = SocialGraph.build(keys // n_users, keys % n_users)
    return Dataset(
        users, items, inter, item_meta, user_meta, social, name="platform (numpy stand-in)"
    )


def _load_platform(platform_dir: Path, seed: int) -> tuple[Dataset, float, float, float] | None:
    """(dataset, generate s, load wall s, load CPU s) through the real generator and loader,
    or None where either is not importable."""
    try:
        from serendip.data.loaders import load_source
    except ImportError:
        return None
    gen_s = 0.0
    if not (platform_dir / "manifest.json").exists():
        try:
            from serendip.data.synthetic import generate_platform
        except ImportError:
            return None
        t = time.perf_counter()
        generate_platform("platform", seed=seed, out=platform_dir)
        gen_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    ds = load_source(platform_dir)
    return ds, gen_s, time.perf_counter() - t, time.process_time() - c


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform-dir", type=Path, default=ROOT / "bench-out" / "platform")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "bench-out" / "analyze-report")
    parser.add_argument("--numpy", action="store_true", help="use the NumPy-built stand-in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    loaded = None if args.numpy else _load_platform(args.platform_dir, args.seed)
    load_s: float | None = None
    load_cpu_s: float | None = None
    if loaded is not None:
        ds, build_s, load_s, load_cpu_s = loaded
        source = f"generate_platform('platform', seed={args.seed}) loaded with load_source"
    else:
        t = time.perf_counter()
        ds = numpy_platform(args.seed)
        build_s = time.perf_counter() - t
        source = "NumPy-built stand-in (benchmarks/bench_analyze.py:numpy_platform, seed 0); loading not timed"
    print(f"{ds!r}", file=sys.stderr)

    load_avg = os.getloadavg()[0]
    t, c = time.perf_counter(), time.process_time()
    analysis = analyze_dataset(
        ds, seed=args.seed, progress=lambda s, i, n: print(f"  [{i}/{n}] {s}", file=sys.stderr)
    )
    analyze_s, analyze_cpu_s = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    write_report(analysis, args.report_dir)
    report_s, report_cpu_s = time.perf_counter() - t, time.process_time() - c
    inn = analysis.in_network

    result: dict[str, Any] = {
        "benchmark": "analyze",
        "command": "python benchmarks/bench_analyze.py" + (" --numpy" if args.numpy else ""),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), Python "
        f"{platform.python_version()}, shared with other jobs",
        "source": source,
        "dataset": {
            "users": ds.n_users,
            "items": ds.n_items,
            "interactions": ds.n_interactions,
            "social_edges": len(ds.social),
        },
        "build_or_generate_s": round(build_s, 2),
        "load_average_at_start": round(load_avg, 2),
        "wall_s": {
            "load_source": None if load_s is None else round(load_s, 2),
            "analyze_dataset": round(analyze_s, 2),
            "write_report": round(report_s, 2),
            "total": round((load_s or 0.0) + analyze_s + report_s, 2),
        },
        "cpu_s": {
            "load_source": None if load_cpu_s is None else round(load_cpu_s, 2),
            "analyze_dataset": round(analyze_cpu_s, 2),
            "write_report": round(report_cpu_s, 2),
            "total": round((load_cpu_s or 0.0) + analyze_cpu_s + report_cpu_s, 2),
        },
        "target_s": 300,
        "analysis_steps_wall_s": dict(analysis.timings_s),
        "peak_rss_gb": round(_peak_rss_gb(), 2),
        "in_network": {
            "method": None if inn is None else inn.method,
            "n_evaluated": None if inn is None else inn.n_evaluated,
            "share_in_network": None if inn is None else inn.share_in_network,
        },
        "quality_findings": len(analysis.quality),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analyze.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "analyze.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _markdown(r: dict[str, Any]) -> str:
    d, wall, cpu = r["dataset"], r["wall_s"], r["cpu_s"]
    lines = [
        "# Benchmark: `serendip analyze` at platform scale",
        "",
        f"- Command: `{r['command']}`",
        f"- Machine: {r['machine']}; 1-minute load average {r['load_average_at_start']:.1f} "
        "when the analysis started (wall time stretches with the load, CPU time much less)",
        f"- Data: {r['source']}",
        f"- Size: {d['users']:,} users, {d['items']:,} items, {d['interactions']:,} interactions, "
        f"{d['social_edges']:,} follow edges",
        "",
        "| phase | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for phase in ("load_source", "analyze_dataset", "write_report"):
        if wall[phase] is not None:
            lines.append(f"| {phase} | {wall[phase]:.1f} | {cpu[phase]:.1f} |")
    lines += [
        f"| **total** (target {r['target_s']} s) | **{wall['total']:.1f}** | **{cpu['total']:.1f}** |",
        "",
        "| analysis step | wall s |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in r["analysis_steps_wall_s"].items()]
    inn = r["in_network"]
    share = "-" if inn["share_in_network"] is None else f"{inn['share_in_network']:.3f}"
    lines += [
        "",
        f"Peak RSS {r['peak_rss_gb']:.1f} GB. In-network check: {inn['method']} on "
        f"{inn['n_evaluated']:,} interactions (share {share}). "
        f"Data-quality findings: {r['quality_findings']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
