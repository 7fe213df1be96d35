"""The default candidate sources at the mission's scale: fit cost and per-user cost at 1M items.

Issue 17.3 asks that no default source pays a dense per-user pass over the catalog. For each
default source (`DEFAULT_SOURCES`) this script fits it on the whole log of a platform, records
the fit's wall and CPU seconds and the process's resident memory after it, then times one
`propose` per user (thread CPU time, BLAS limited to one thread as a server runs) for a sample
of users with history. Run on `small` (20K items) and on `platform` (1M items), the two tables
show which costs grow with the catalog.

The large-catalog paths (content: the impact-ordered inverted index; explore: similar users in
a truncated-SVD space past the exact product's budget) are checked for quality on `small`'s
temporal split, forced on, against the exact paths: recall@30 of the future and the overlap of
the two proposals.

    .venv/bin/python benchmarks/bench_sources_scale.py --preset small
    .venv/bin/python benchmarks/bench_sources_scale.py --data /work/plat/platform --preset platform
    .venv/bin/python benchmarks/bench_sources_scale.py --quality          # the small-preset check

Writes benchmarks/results/sources_scale.json and .md (presets run earlier keep their rows).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform as platform_mod
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from serendip.data.dataset import Dataset
from serendip.data.loaders import load_platform
from serendip.data.synthetic import generate_platform
from serendip.evaluation import temporal_split
from serendip.pipeline.candidates import CandidateSource, Proposal, UserContext
from serendip.pipeline.config import DEFAULT_SOURCES
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.sources import make_source

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
N = 50


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _time_proposals(src: CandidateSource, contexts: list[UserContext]) -> np.ndarray:
    for c in contexts[:5]:  # warm-up (lazy imports, caches)
        src.propose(c, N)
    out = []
    for c in contexts:
        t0 = time.thread_time()
        src.propose(c, N)
        out.append((time.thread_time() - t0) * 1000)
    return np.asarray(out)


def scale_rows(
    ds: Dataset, sources: list[str], n_users: int, seed: int, log: Callable[[str], None]
) -> list[dict]:
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.diff(ds.seen().indptr) > 0)
    sample = np.sort(rng.choice(active, size=min(n_users, len(active)), replace=False))
    contexts = contexts_from_dataset(ds, list(ds.users.lookup(sample)))
    rows = []
    for name in sources:
        gc.collect()
        rss0 = _rss_mib()
        log(f"fitting {name} ...")
        w0, c0 = time.perf_counter(), _cpu_s()
        src = make_source(name).fit(ds)
        fit_wall, fit_cpu = time.perf_counter() - w0, _cpu_s() - c0
        rss1 = _rss_mib()
        with threadpool_limits(1):
            ms = _time_proposals(src, contexts)
        rows.append(
            {
                "source": name,
                "fit_wall_s": round(fit_wall, 1),
                "fit_cpu_s": round(fit_cpu, 1),
                "rss_after_fit_mib": round(rss1),
                "rss_added_mib": round(rss1 - rss0),
                "cpu_ms_p50": round(float(np.percentile(ms, 50)), 2),
                "cpu_ms_p99": round(float(np.percentile(ms, 99)), 2),
                "cpu_ms_mean": round(float(ms.mean()), 2),
            }
        )
        log(f"  {rows[-1]}")
        del src
    return rows


def _recall(props: list[Proposal], truth: list[set[int]]) -> float:
    return float(
        np.mean(
            [len(set(p.items.tolist()) & t) / len(t) for p, t in zip(props, truth, strict=True)]
        )
    )


def _overlap(a: list[Proposal], b: list[Proposal]) -> float:
    vals = [
        len(np.intersect1d(x.items, y.items)) / len(x.items)
        for x, y in zip(a, b, strict=True)
        if len(x.items)
    ]
    return float(np.mean(vals))


def quality_rows(ds: Dataset, n_users: int, seed: int) -> list[dict]:
    """Exact vs large-catalog paths on a temporal split (forced on at this size)."""
    from serendip.models.social import _graph
    from serendip.pipeline.sources import explore as explore_mod

    split = temporal_split(ds, test_fraction=0.2)
    train, test = split.train, split.test
    cut = float(split.params["cut"])
    rng = np.random.default_rng(seed)
    tu = np.unique(test.interactions.user)
    sample = np.sort(rng.choice(tu, size=min(n_users, len(tu)), replace=False))
    contexts = contexts_from_dataset(train, list(ds.users.lookup(sample)), now=cut)
    ts = test.seen()
    truth = [set(ts[u].indices.tolist()) for u in sample]
    rows = []
    with threadpool_limits(1):
        exact = make_source("content").fit(train)
        scaled = make_source("content", postings_from_items=0).fit(train)
        pa, pb = exact.propose_batch(contexts, 30), scaled.propose_batch(contexts, 30)
        ta, tb = _time_proposals(exact, contexts), _time_proposals(scaled, contexts)
        rows.append(
            {
                "source": "content",
                "large-catalog path": "inverted index (32 terms x 1,000 postings)",
                "recall_exact": _recall(pa, truth),
                "recall_scaled": _recall(pb, truth),
                "overlap": _overlap(pa, pb),
                "ms_exact": float(ta.mean()),
                "ms_scaled": float(tb.mean()),
            }
        )
        exact = make_source("explore").fit(train)
        real = explore_mod.similar_users
        explore_mod.similar_users = functools.partial(real, exact_budget=0)  # force the SVD path
        try:
            scaled = make_source("explore").fit(train)
        finally:
            explore_mod.similar_users = real
        pa, pb = exact.propose_batch(contexts, 30), scaled.propose_batch(contexts, 30)
        rows.append(
            {
                "source": "explore",
                "large-catalog path": f"similar users by SVD cosine ({_graph.SIMILAR_SVD_DIM} dims)",
                "recall_exact": _recall(pa, truth),
                "recall_scaled": _recall(pb, truth),
                "overlap": _overlap(pa, pb),
                "ms_exact": float(_time_proposals(exact, contexts).mean()),
                "ms_scaled": float(_time_proposals(scaled, contexts).mean()),
            }
        )
    return rows


def write_md(out: dict) -> None:
    lines = [
        "# Candidate sources at scale: fit cost and per-user cost (issue 17.3)",
        "",
        "Each default source fitted alone on the whole log, then one `propose(user, 50)` per "
        "sampled user with history (thread CPU time, BLAS 1 thread). Memory: the process's "
        "resident set after the fit (the sources before it were released).",
        "",
    ]
    for preset, run in out.get("presets", {}).items():
        lines += [
            f"## {preset}: {run['dataset']}",
            "",
            f"Command: `{run['command']}`; machine: {run['machine']}; {run['when']}; "
            f"{run['users']} users timed.",
            "",
            "| source | fit wall s | fit CPU s | RSS after fit MiB | added MiB | CPU ms/user p50 "
            "| p99 | mean |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in run["rows"]:
            lines.append(
                f"| {r['source']} | {r['fit_wall_s']} | {r['fit_cpu_s']} | "
                f"{r['rss_after_fit_mib']} | {r['rss_added_mib']} | {r['cpu_ms_p50']} | "
                f"{r['cpu_ms_p99']} | {r['cpu_ms_mean']} |"
            )
        total = sum(r["cpu_ms_mean"] for r in run["rows"])
        lines += ["", f"Sum of the sources' mean CPU per user: {total:.1f} ms.", ""]
    q = out.get("quality")
    if q:
        lines += [
            "## The large-catalog paths against the exact ones (small, temporal split)",
            "",
            f"Command: `{q['command']}`; {q['when']}; {q['users']} test users, top 30, "
            "recall of each user's test items; overlap = share of the exact path's proposals "
            "the scaled path also makes.",
            "",
            "| source | large-catalog path | recall@30 exact | recall@30 scaled | overlap | "
            "ms exact | ms scaled |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in q["rows"]:
            lines.append(
                f"| {r['source']} | {r['large-catalog path']} | {r['recall_exact']:.4f} | "
                f"{r['recall_scaled']:.4f} | {r['overlap']:.3f} | {r['ms_exact']:.2f} | "
                f"{r['ms_scaled']:.2f} |"
            )
        lines.append("")
    (RESULTS / "sources_scale.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--data", type=Path, default=None, help="an existing platform directory")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", action="store_true", help="the exact-vs-scaled check on small")
    ap.add_argument(
        "--source",
        action="append",
        default=None,
        help="only these sources (rows of earlier runs of the same preset are kept for the others)",
    )
    args = ap.parse_args()
    path = RESULTS / "sources_scale.json"
    out: dict = json.loads(path.read_text()) if path.exists() else {}
    machine = (
        f"{platform_mod.machine()}, {os.cpu_count()} cores, Python {platform_mod.python_version()}"
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or generate_platform(
            "small" if args.quality else args.preset, seed=args.seed, out=Path(tmp) / "p"
        )
        log(f"loading {data}")
        ds = load_platform(data)
        log(str(ds))
        if args.quality:
            out["quality"] = {
                "command": "python benchmarks/bench_sources_scale.py " + " ".join(sys.argv[1:]),
                "when": when,
                "users": args.users,
                "rows": quality_rows(ds, args.users, args.seed),
            }
        else:
            cmd = "python benchmarks/bench_sources_scale.py --preset " + args.preset
            if args.data:
                cmd += " --data <platform dir>"
            names = args.source or list(DEFAULT_SOURCES)
            earlier = out.get("presets", {}).get(args.preset, {}).get("rows", [])
            rows = {r["source"]: r for r in earlier if r["source"] in DEFAULT_SOURCES}
            rows.update({r["source"]: r for r in scale_rows(ds, names, args.users, args.seed, log)})
            out.setdefault("presets", {})[args.preset] = {
                "command": cmd,
                "machine": machine,
                "when": when,
                "dataset": str(ds),
                "users": args.users,
                "rows": [rows[n] for n in DEFAULT_SOURCES if n in rows],
            }
    path.write_text(json.dumps(out, indent=2))
    write_md(out)
    log("wrote " + str(path))


if __name__ == "__main__":
    main()


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    out = json.loads(path.read_text())
    presets = out.get("presets", {})
    names = list(presets)
    table = [
        "| source | " + " | ".join(f"{n}: CPU ms/user, fit s" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    by = {n: {r["source"]: r for r in presets[n]["rows"]} for n in names}
    for source in DEFAULT_SOURCES:
        cells = [
            f"{by[n][source]['cpu_ms_mean']:.2f}, {by[n][source]['fit_wall_s']:.0f}"
            if source in by[n]
            else "–"
            for n in names
        ]
        table.append(f"| {source} | " + " | ".join(cells) + " |")
    sums = {n: sum(r["cpu_ms_mean"] for r in presets[n]["rows"]) for n in names}
    short = ", ".join(f"{n} {v:.1f} ms/user" for n, v in sums.items())
    return table, f"sum of the sources' per-user CPU: {short}", short
