"""First start (issue 17, point 6): `serendip serve` on an empty store, as a new user runs it.

    python benchmarks/bench_first_start.py              # the `small` preset (the default)
    python benchmarks/bench_first_start.py --preset tiny

Starts `serendip serve` with its defaults on an empty SQLite store in a temporary directory
(the first start generates the synthetic platform, imports it, fits the fast model, serves it,
then fits the default model, the pipeline, and swaps it in) and records, from the spawn: when
`/healthz` answers, when the first personal recommendation answers 200, and when `/readyz`
names the default model; plus each `/readyz` stage seen on the way. Writes
`benchmarks/results/first_start.md|json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from serendip.service.process import ServeProcess

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_S = 60.0


def run(preset: str, upgrade_timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'serendip.db'}"
        env = {"SERENDIP_BOOTSTRAP_PRESET": preset, "SERENDIP_LOG_LEVEL": "info"}
        server = ServeProcess(db, Path(tmp), env)
        stages: list[tuple[float, str]] = []
        marks: dict[str, float] = {}
        try:
            marks["healthz_s"] = server.wait("/healthz", 120)
            deadline = time.perf_counter() + upgrade_timeout
            with httpx.Client(timeout=30) as http:
                while time.perf_counter() < deadline:
                    now = time.perf_counter() - server.started
                    r = http.get(server.url + "/readyz")
                    body = r.json()
                    # a stage once, when it begins (its "(N s so far)" clock left out)
                    stage = _stage(str(body.get("stage") or ""))
                    if stage and (not stages or stages[-1][1] != stage):
                        stages.append((round(now, 1), str(stage)))
                    if r.status_code == 200 and "first_recommendation_s" not in marks:
                        rec = http.get(server.url + "/v1/users/u0/recommendations")
                        if rec.status_code == 200 and rec.json()["items"]:
                            marks["first_recommendation_s"] = now
                            marks["first_model"] = body.get("model")
                    if r.status_code == 200 and body.get("model") == "pipeline":
                        marks["default_model_s"] = now
                        marks["default_model"] = body.get("model")
                        break
                    time.sleep(0.5)
        finally:
            server.stop()
            log_tail = server.log_path.read_text(errors="replace").splitlines()[-40:]
    return {"marks": marks, "stages": stages, "log_tail": log_tail}


def _stage(text: str) -> str:
    """A stage's name without its clock and counter ("(12 s so far): 1000 / 5000")."""
    return re.sub(r" \(\d+ s so far\)(: .*)?$", "", text)


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    d = json.loads(path.read_text())
    m = d["marks"]
    first = m.get("first_recommendation_s")
    table = [
        "| from the spawn | seconds |",
        "|---|---:|",
        f"| `/healthz` answers | {m.get('healthz_s', float('nan')):.1f} |",
        f"| first personal recommendation ({m.get('first_model')}) | "
        + (f"{first:.1f} |" if first is not None else "not within the run |"),
        f"| the default model ({m.get('default_model', 'pipeline')}) serves | "
        + (f"{m['default_model_s']:.0f} |" if "default_model_s" in m else "not within the run |"),
    ]
    ok = first is not None and first <= BUDGET_S
    verdict = (
        f"on the `{d['preset']}` preset the first recommendation answers after "
        + (f"{first:.0f} s" if first is not None else "(none)")
        + f" ({'within' if ok else 'outside'} the {BUDGET_S:.0f} s budget)."
    )
    return table, verdict, f"{first:.0f} s to first list" if first is not None else "no list"


def write(d: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_start.json").write_text(json.dumps(d, indent=2) + "\n")
    table, verdict, _ = summary(RESULTS / "first_start.json")
    lines = [
        "# Benchmark: first start on an empty store (issue 17.6)",
        "",
        f"- Command: `{d['command']}`",
        f"- Machine: {d['machine']}; load average {d['load'][0]:.1f} before, "
        f"{d['load'][1]:.1f} after; run at {d['run_at']}",
        f"- `serendip serve` with its defaults on an empty SQLite store, preset `{d['preset']}`.",
        "",
        *table,
        "",
        f"Verdict: {verdict}",
        "",
        "## The first start's stages in `/readyz` (seconds from the spawn)",
        "",
        *[f"- {t:.1f} s: {s}" for t, s in _first_of_each(d["stages"])],
    ]
    (RESULTS / "first_start.md").write_text("\n".join(lines) + "\n")


def _first_of_each(stages: list[list[Any]]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for t, s in stages:
        name = _stage(str(s))
        if not out or out[-1][1] != name:
            out.append((float(t), name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--upgrade-timeout", type=float, default=1200.0)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    out = run(args.preset, args.upgrade_timeout)
    d = {
        "preset": args.preset,
        "command": "python benchmarks/bench_first_start.py"
        + (f" --preset {args.preset}" if args.preset != "small" else ""),
        "machine": f"{os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load": [load0, os.getloadavg()[0]],
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **out,
    }
    write(d)
    print(json.dumps(d["marks"]), flush=True)


if __name__ == "__main__":
    main()
