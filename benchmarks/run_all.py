"""`make bench`: run every benchmark script, then assemble benchmarks/RESULTS.md from the tables
they wrote. Each script writes its own `results/<name>.md` and `.json` from a real run; this file
only runs them in order and concatenates, so RESULTS.md never holds a number no script produced.

    python benchmarks/run_all.py            # everything (about 30-60 minutes on 2 cores)
    python benchmarks/run_all.py --only models --only evaluate
    python benchmarks/run_all.py --assemble # rebuild RESULTS.md from the existing results/*.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
#: The serving benchmark's platform model: the lighter source set that fits and precomputes
#: 100K users x 1M items on 2 cores (why: the note in results/serve.md). Its ranker keeps the
#: settings its tables were measured with (one member of 31 leaves: the class defaults until
#: stop 11, when the bagged small-tree recipe became the default).
SERVE_PLATFORM_PARAMS = json.dumps(json.loads((ROOT / "serve_platform_model.json").read_text()))

#: (name, command args, result files it writes, in RESULTS.md order)
BENCHES: list[tuple[str, list[str], list[str]]] = [
    ("generate", ["bench_generate.py"], ["generate.md"]),
    ("analyze", ["bench_analyze.py"], ["analyze.md"]),
    ("evaluate", ["bench_evaluate.py"], ["evaluate.md"]),
    (
        "models",
        ["bench_models.py", "--dataset", "ml-100k", "--dataset", "lastfm-2k"],
        ["models.md"],
    ),
    # the weighted hybrid's member/weight search on validation (by hand: see its docstring)
    ("hybrid-search", [], ["hybrid-search-ml-100k.md"]),
    # candidate signals added to the default blend, validation only (by hand: see its docstring)
    ("hybrid-member-probes", [], ["hybrid-member-probes.md"]),
    # needs a CUDA device: run by hand where one is lent (see the script's docstring)
    ("deep-device", [], ["deep-device.md"]),
    ("study", ["bench_study.py", "--dataset", "ml-100k"], ["study-ml-100k.md"]),
    (
        "pipeline",
        [
            "bench_pipeline.py",
            "--dataset",
            "ml-100k",
            "--dataset",
            "lastfm-2k",
            "--dataset",
            "small",
        ],
        ["pipeline.md"],
    ),
    ("sources", ["bench_sources_latency.py"], ["sources_latency.md"]),
    ("sources-recall", ["bench_sources_recall.py"], ["sources_recall.md"]),
    ("ann", ["bench_ann.py"], ["ann.md"]),
    ("ingest", ["bench_ingest.py"], ["ingest.md"]),
    ("serve-cache", ["bench_runtime_cache.py"], ["serve_cache.md"]),
    (
        "serve",
        ["bench_serve.py", "--train-window-days", "14", "--model-params", SERVE_PLATFORM_PARAMS],
        ["serve.md"],
    ),
    # the serving benchmark on a store with live state since the fit (by hand: see the file)
    ("serve-live", [], ["serve-live.md"]),
    # live users' in-process cost on the platform model (by hand: needs its artifact)
    ("live-request", [], ["live_request.md"]),
    (
        "serve-small",
        ["bench_serve.py", "--preset", "small", "--duration", "20", "--rates", "50,100,200"],
        ["serve-small.md"],
    ),
    ("app-inprocess", ["bench_app_inprocess.py"], ["app_inprocess.md"]),
]

HEADER = """# Benchmark results

Every table below was written by a benchmark script from a real run on this project's reference
machine (2 CPU cores, 24 GiB RAM). Each section names the command that reproduces it; `make bench`
runs them all and rebuilds this file (`python benchmarks/run_all.py --assemble` only rebuilds it).
Wall times on a shared machine vary with its load; where a script records CPU time, that is the
load-independent figure.
"""


def assemble() -> Path:
    parts = [HEADER]
    for name, _, files in BENCHES:
        for f in files:
            path = RESULTS / f
            if path.exists():
                text = path.read_text().strip()
                # demote the scripts' own top-level headings under this file's title
                text = "\n".join(
                    "#" + line if line.startswith("#") else line for line in text.splitlines()
                )
                parts.append(text)
            else:
                parts.append(
                    f"## {name}\n\nNot run yet: `python benchmarks/run_all.py --only {name}`."
                )
    out = ROOT / "RESULTS.md"
    out.write_text("\n\n".join(parts) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", action="append", choices=[b[0] for b in BENCHES])
    ap.add_argument("--assemble", action="store_true", help="only rebuild RESULTS.md")
    args = ap.parse_args()
    if not args.assemble:
        for name, cmd, _ in BENCHES:
            if (args.only and name not in args.only) or not cmd:
                continue
            print(f"== {name}: python benchmarks/{' '.join(cmd)}", flush=True)
            subprocess.run([sys.executable, str(ROOT / cmd[0]), *cmd[1:]], check=True)
    print(f"wrote {assemble()}")


if __name__ == "__main__":
    main()
