"""The `full` study profile on one dataset (issue 4): run it, time it, and write its table.

    python benchmarks/bench_study.py                      # ml-100k: runs the study, then the table
    python benchmarks/bench_study.py --dataset lastfm-2k
    python benchmarks/bench_study.py --from bench-out/study-ml100k --wall 3100 --cpu 2900
        # table from a study already run by `serendip study --profile full --dataset ml-100k
        # --out bench-out/study-ml100k` (timed outside, e.g. with /usr/bin/time -v)

Writes `benchmarks/results/study-<dataset>.md|json`: one table per protocol, every model, peer and
the pipeline, tuned on validation carved from train (never on test), with NDCG@10 and its paired
difference to the best baseline (bootstrap CI, Holm-corrected Wilcoxon), beyond-accuracy metrics
and cost. The numbers come from the study's own `results.json`; this script adds nothing but the
layout and the wall/CPU time of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
REPO = ROOT.parent


def run_study(dataset: str, out: Path) -> tuple[float, float]:
    """Run the full profile on one dataset in a child process; (wall s, child CPU s)."""
    cmd = [
        str(Path(sys.executable).parent / "serendip"),
        "study",
        "--profile",
        "full",
        "--dataset",
        dataset,
        "--out",
        str(out),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _sig_text(sig: dict[str, Any] | None) -> str:
    if not sig:
        return "baseline" if sig is None else "–"
    mark = (
        "▲"
        if sig["significant"] and sig["mean_diff"] > 0
        else ("▼" if sig["significant"] else "n.s.")
    )
    return f"{sig['mean_diff']:+.4f} [{sig['ci_low']:+.4f}, {sig['ci_high']:+.4f}] {mark}"


def table(results: dict[str, Any], dataset: str) -> str:
    rows = [r for r in results["rows"] if r["dataset"] == dataset]
    sig = {
        (s["protocol"], s["model"]): s
        for s in results.get("significance", [])
        if s.get("dataset") == dataset
    }
    baselines = {(s["protocol"], s["baseline"]) for s in sig.values()}
    out: list[str] = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        cell = [r for r in rows if r["protocol"] == protocol]
        cell.sort(key=lambda r: -(r.get("metrics", {}).get("ndcg@10") or -1.0))
        out.append(f"### {dataset} / {protocol}\n")
        out.append(
            "| model | kind | NDCG@10 | Δ vs best baseline [95% CI] | P@10 | R@10 | MAP@10 | "
            "coverage@10 | novelty@10 | fit s | peak MB | size MB | p50 ms | p99 ms | tuning |"
        )
        out.append("|" + "---|" * 15)
        for r in cell:
            m, c, t = r.get("metrics", {}), r.get("cost", {}), r.get("tuning", {})
            if r.get("status") != "ok":
                out.append(
                    f"| {r['model']} | {r.get('kind', '')} | failed: {r.get('error', '')[:80]} |"
                    + " |" * 12
                )
                continue
            key = (protocol, r["model"])
            s = sig.get(key)
            sig_cell = "baseline" if key in baselines else _sig_text(s) if s else "–"
            out.append(
                f"| {r['model']} | {r.get('kind', '')} | {_fmt(m.get('ndcg@10'))} | {sig_cell} | "
                f"{_fmt(m.get('precision@10'))} | {_fmt(m.get('recall@10'))} | "
                f"{_fmt(m.get('map@10'))} | {_fmt(m.get('coverage@10'))} | "
                f"{_fmt(m.get('novelty@10'), 2)} | {_fmt(c.get('fit_seconds'), 1)} | "
                f"{_fmt(c.get('peak_memory_mb'), 0)} | {_fmt(c.get('model_size_mb'), 1)} | "
                f"{_fmt(c.get('recommend_single_p50_ms'), 1)} | "
                f"{_fmt(c.get('recommend_single_p99_ms'), 1)} | "
                f"{t.get('trials', 0)} trials, {_fmt(t.get('seconds'), 0)} s |"
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--out", type=Path, default=None, help="study directory (resumable)")
    ap.add_argument("--from", dest="source", type=Path, default=None)
    ap.add_argument("--wall", type=float, default=None, help="with --from: measured wall s")
    ap.add_argument("--cpu", type=float, default=None, help="with --from: measured CPU s")
    ap.add_argument("--ran", default=None, help="with --from: the exact study command that ran")
    args = ap.parse_args()
    load = os.getloadavg()
    if args.source is None:
        out = args.out or REPO / "bench-out" / f"study-{args.dataset}"
        wall, cpu = run_study(args.dataset, out)
        how = f"`python benchmarks/bench_study.py --dataset {args.dataset}`"
    else:
        out, wall, cpu = args.source, args.wall, args.cpu
        ran = args.ran or f"serendip study --profile full --dataset {args.dataset} --out {out}"
        how = (
            f"`{ran}` (timed outside), table by "
            f"`python benchmarks/bench_study.py --from {out} --wall W --cpu C`"
        )
    results = json.loads((out / "results.json").read_text())
    rows = [r for r in results["rows"] if r["dataset"] == args.dataset]
    n_ok = sum(r.get("status") == "ok" for r in rows)
    timing = "not timed"
    if wall:
        timing = f"{wall / 60:.1f} min wall" + (f", {cpu / 60:.1f} min CPU" if cpu else "")
    cell_s = [r["cell_seconds"] for r in rows if "cell_seconds" in r]
    if cell_s:
        timing += f"; the cells' own wall time adds up to {sum(cell_s) / 60:.1f} min" + (
            f" ({len(cell_s)} of {len(rows)} cells timed)" if len(cell_s) < len(rows) else ""
        )
    reused = int(results["study"].get("cells_reused") or 0)
    if reused:
        timing += (
            f"; {reused} cells were reused from an earlier run into the same study directory "
            f"(only {len(rows) - reused} computed by this run, which the times above cover)"
        )
    md = [
        f"## The full study on {args.dataset} (issue 4)\n",
        f"- Command: {how}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average when the table was written "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}",
        f"- Code version {results['study'].get('code_version', '?')}; written "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- The whole run: {timing}; {len(rows)} cells, {n_ok} ok "
        "(models x protocols; every model tuned on a validation split carved from train, "
        "refit on train, evaluated once on test over the full catalog)",
        "- Δ: paired per-user NDCG@10 difference to the best baseline of that protocol, "
        "bootstrap 95% CI; ▲/▼ = significant after Holm correction of Wilcoxon p-values.",
        "",
        table(results, args.dataset),
    ]
    RESULTS.mkdir(exist_ok=True)
    name = f"study-{args.dataset}"
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                "dataset": args.dataset,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "study": results["study"],
                "rows": rows,
                "significance": [
                    s for s in results.get("significance", []) if s.get("dataset") == args.dataset
                ],
            },
            indent=1,
        )
    )
    print(f"wrote {RESULTS / (name + '.md')}")


if __name__ == "__main__":
    main()
