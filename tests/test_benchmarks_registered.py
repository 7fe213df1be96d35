"""`make bench` runs every script in benchmarks/: a new script cannot be left out of its list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _registered() -> list[tuple[str, str]]:
    """(name, script) of every benchmark run_all runs, from its `--list`."""
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--list"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]  # type: ignore[misc]


def test_every_benchmark_script_is_run_by_make_bench() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"run_all.py"}
    registered = _registered()
    assert scripts, "no benchmark scripts found"
    missing = scripts - {script for _, script in registered}
    assert not missing, f"benchmarks/run_all.py's BENCHES does not run: {sorted(missing)}"
    unknown = {script for _, script in registered} - scripts
    assert not unknown, f"BENCHES names scripts that do not exist: {sorted(unknown)}"
    names = [name for name, _ in registered]
    assert len(names) == len(set(names)), "benchmark names must be unique (--only picks by name)"
