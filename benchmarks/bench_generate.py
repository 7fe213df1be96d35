"""Benchmark the synthetic platform generator: wall time, CPU time and peak memory per preset.

Each preset runs in its own child process (so its peak RSS is its own, read with
`resource.getrusage` in the child) and writes into a temporary directory, or under --out.
Targets: `platform` (100K users, 1M items, ~20M interactions) under 10 minutes and 8 GiB on 2
cores; `small` under 60 s; `tiny` under 2 s. The machine may be shared: the load average before
and after each run is recorded, and CPU time (user + system) is the load-independent figure.
Writes benchmarks/results/generate.md and .json.

    .venv/bin/python benchmarks/bench_generate.py                     # tiny, small, platform
    .venv/bin/python benchmarks/bench_generate.py --presets platform --out /tmp/gen
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS_S = {"tiny": 2.0, "small": 60.0, "platform": 600.0}
RSS_TARGET_GIB = 8.0

# Runs in the child: generate, then report its own timings and peak RSS as one JSON line.
_CHILD = """
import json, resource, sys, time
from serendip.data.synthetic import generate_platform
preset, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stages = {}
def progress(stage, done, total):
    now = time.perf_counter()
    first, _ = stages.get(stage, (now, now))
    stages[stage] = (first, now)
t0 = time.perf_counter()
generate_platform(preset, seed=seed, out=out, progress=progress)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "wall_s": wall,
    "cpu_s": ru.ru_utime + ru.ru_stime,
    "peak_rss_mib": ru.ru_maxrss / 1024,
    "stages_s": {k: b - a for k, (a, b) in stages.items()},
}))
"""


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_model": model,
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def dir_size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run_preset(preset: str, seed: int, out: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, preset, str(seed), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"generation of '{preset}' failed:\n{proc.stderr}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "preset": preset,
        "seed": seed,
        "process_wall_s": round(elapsed, 2),
        "generate_wall_s": round(child["wall_s"], 2),
        "cpu_s": round(child["cpu_s"], 2),
        "peak_rss_mib": round(child["peak_rss_mib"], 1),
        "stages_s": {k: round(v, 2) for k, v in child["stages_s"].items()},
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        "output_mib": round(dir_size_mib(out), 1),
        "counts": manifest["counts"],
        "in_network_share": manifest["in_network_share"],
        "target_s": TARGETS_S.get(preset),
    }


def write_results(runs: list[dict[str, Any]], command: str) -> None:
    info = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "generate", "command": command, "machine": info, "runs": runs}
    (RESULTS / "generate.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Benchmark: `serendip generate` (synthetic platform)",
        "",
        f"- Command: `{command}`",
        f"- Machine: {info['cpus']} CPU cores visible ({info['cpu_model'] or 'unknown CPU'}), "
        f"{info['memory_gib']} GiB RAM, Python {info['python']}; the project target is 2 cores",
        "- Each preset runs in its own process; peak RSS is that process's `ru_maxrss`. The "
        "machine is shared with other work: the 1-minute load average is recorded, and CPU time "
        "(user + system) is the figure that does not depend on it.",
        "",
        "| preset | users | items | interactions | follows | in-network | wall s (target) "
        "| CPU s | peak RSS MiB | output MiB | load before/after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        c = r["counts"]
        target = f" ({r['target_s']:.0f})" if r["target_s"] else ""
        lines.append(
            f"| {r['preset']} | {c['users']:,} | {c['items']:,} | {c['interactions']:,} "
            f"| {c['social_edges']:,} | {r['in_network_share']:.1%} "
            f"| {r['generate_wall_s']:.1f}{target} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:,.0f} "
            f"| {r['output_mib']:,.1f} | {r['load_avg_before']:.1f} / {r['load_avg_after']:.1f} |"
        )
    lines += [
        "",
        "Stages (wall seconds):",
        "",
        "| preset | " + " | ".join(_stage_names(runs)) + " |",
    ]
    lines.append("|---|" + "---:|" * len(_stage_names(runs)))
    for r in runs:
        cells = [f"{r['stages_s'].get(s, 0.0):.1f}" for s in _stage_names(runs)]
        lines.append(f"| {r['preset']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Events:",
        "",
        "| preset | view | click | like | comment | share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        e = r["counts"]["events"]
        lines.append(
            f"| {r['preset']} | {e['view']:,} | {e['click']:,} | {e['like']:,} | {e['comment']:,} | {e['share']:,} |"
        )
    verdict = []
    for r in runs:
        if r["target_s"]:
            ok = (
                r["generate_wall_s"] <= r["target_s"] and r["peak_rss_mib"] <= RSS_TARGET_GIB * 1024
            )
            verdict.append(f"{r['preset']}: {'within' if ok else 'OVER'} target")
    lines += ["", "Verdict: " + "; ".join(verdict) + ".", ""]
    (RESULTS / "generate.md").write_text("\n".join(lines))


def _stage_names(runs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in runs:
        names += [s for s in r["stages_s"] if s not in names]
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "platform"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the outputs under this directory"
    )
    args = parser.parse_args()
    command = "python benchmarks/bench_generate.py " + " ".join(sys.argv[1:])
    tmp = None if args.out else Path(tempfile.mkdtemp(prefix="serendip-bench-generate-"))
    base = args.out or tmp
    assert base is not None
    runs = []
    try:
        for preset in args.presets:
            result = run_preset(preset, args.seed, base / preset)
            print(json.dumps(result), flush=True)
            runs.append(result)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    write_results(runs, command.strip())
    print(f"wrote {RESULTS / 'generate.md'}")


if __name__ == "__main__":
    main()
