"""The privacy study (issue 19): the accuracy cost of the differential-privacy option at several
epsilons, and the bias and discovery audit, from `serendip study --profile privacy`.

    python benchmarks/bench_privacy.py                    # runs the study, then the table
    python benchmarks/bench_privacy.py --dataset ml-100k  # one dataset (about a minute)
    python benchmarks/bench_privacy.py --from DIR         # the table of a study already run

Writes `benchmarks/results/privacy.md|json`. Every number comes from the study's own
`results.json` (its `dp_sweep` and each row's `audit`); this script adds the layout only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def run_study(out: Path, dataset: str | None) -> float:
    cmd = [str(Path(sys.executable).parent / "serendip"), "study", "--profile", "privacy"]
    if dataset:
        cmd += ["--dataset", dataset]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--out", str(out)], check=True)
    return time.perf_counter() - t0


def _point(row: dict[str, Any]) -> str:
    point = str(row["dp"]["point"])
    return {"none": "none", "clip": "clip only"}.get(point, f"epsilon {point}")


def _f(v: Any, digits: int = 4) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


def _rel(v: float | None) -> str:
    return "" if v is None else f"{v:+.1%}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def tables(results: dict[str, Any]) -> dict[str, Any]:
    """The DP cost rows (per dataset and model, relative to no DP) and the audit rows."""
    dp_rows = []
    base: dict[tuple[str, str], float] = {}
    for r in results["dp_sweep"]["rows"]:
        if r["status"] == "ok" and r["dp"]["point"] == "none":
            base[(r["dataset"], r["model"])] = r["metrics"]["ndcg@10"]
    for r in results["dp_sweep"]["rows"]:
        if r["status"] != "ok":
            continue
        ndcg = r["metrics"]["ndcg@10"]
        ref = base.get((r["dataset"], r["model"]))
        dp_rows.append(
            {
                "dataset": r["dataset"],
                "model": r["model"],
                "point": _point(r),
                "mechanism": r["params"].get("dp_mechanism"),
                "ndcg@10": ndcg,
                "relative": ndcg / ref - 1.0 if ref else None,
                "coverage@10": r["metrics"].get("coverage@10"),
                "tail_share": (r.get("audit") or {}).get("tail_share"),
            }
        )
    audit_rows = []
    for r in results["rows"]:
        a = r.get("audit") or {}
        if r["status"] != "ok" or not a:
            continue
        groups = a.get("groups") or {}
        audit_rows.append(
            {
                "dataset": r["dataset"],
                "model": r["model"],
                "ndcg@10": r["metrics"]["ndcg@10"],
                "popularity_lift": a.get("popularity_lift"),
                "tail_share": a.get("tail_share"),
                "tail_catalog_share": a.get("tail_catalog_share"),
                "ndcg_least_active": (groups.get("q1") or {}).get("ndcg"),
                "ndcg_most_active": (groups.get(f"q{len(groups)}") or {}).get("ndcg"),
                "oon_share": a.get("oon_share"),
                "oon_hit_share": a.get("oon_hit_share"),
                "new_author_share": a.get("new_author_share"),
            }
        )
    return {"dp": dp_rows, "audit": audit_rows, "note": results["dp_sweep"].get("note", "")}


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    d = json.loads(path.read_text())
    table = ["| dataset | model | privacy | NDCG@10 | vs no DP |", "|---|---|---|---:|---:|"]
    for r in d["dp"]:
        table.append(
            f"| {r['dataset']} | {r['model']} | {r['point']} | {r['ndcg@10']:.4f} | "
            f"{_rel(r['relative'])} |"
        )
    at10 = [r for r in d["dp"] if r["point"] == "epsilon 10.0" and r["relative"] is not None]
    worst = min(at10, key=lambda r: r["relative"]) if at10 else None
    verdict = (
        "the DP option's cost is measured at every epsilon of the sweep"
        + (
            f"; at epsilon 10 it costs {worst['relative']:+.0%} NDCG@10 at worst "
            f"({worst['model']}, {worst['dataset']})"
            if worst
            else ""
        )
        + "; the audit (popularity lift, long-tail share, activity groups, out-of-network "
        "shares) is in the full table."
    )
    return table, verdict, f"eps 10 worst {worst['relative']:+.0%}" if worst else "DP sweep"


def write(d: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "privacy.json").write_text(json.dumps(d, indent=2) + "\n")
    lines = [
        "# Benchmark: the privacy study (issue 19): DP cost and bias audit",
        "",
        f"- Command: `{d['command']}` (runs `serendip study --profile privacy`)",
        f"- Machine: {d['machine']}; study wall time {d['wall_s']:.0f} s; run at {d['run_at']}",
        f"- {d['note']}",
        "",
        "## Differential privacy: accuracy cost (test NDCG@10, full ranking)",
        "",
        "| dataset | model | mechanism | privacy | NDCG@10 | vs no DP | coverage@10 | "
        "long-tail share |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in d["dp"]:
        rel = _rel(r["relative"])
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['mechanism']} | {r['point']} | "
            f"{_f(r['ndcg@10'])} | {rel} | {_f(r['coverage@10'], 3)} | {_pct(r['tail_share'])} |"
        )
    lines += [
        "",
        "## Bias and discovery audit (no DP)",
        "",
        "Popularity lift (Abdollahpouri et al. 2019): (mean popularity of the recommended "
        "items - mean popularity of the users' own history items) / the latter. Long-tail: items outside the head that makes up 80% of "
        "the training interactions (catalog share in brackets). Activity groups: users by "
        "history length, quartiles. Out of network: recommended items (and hits) whose author "
        "the user does not follow (datasets with a social graph and authors).",
        "",
        "| dataset | model | NDCG@10 | popularity lift | long-tail share (catalog) | "
        "NDCG least / most active | out-of-network recs / hits | new-author share |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["audit"]:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {_f(r['ndcg@10'])} | "
            f"{_pct(r['popularity_lift'])} | {_pct(r['tail_share'])} "
            f"({_pct(r['tail_catalog_share'])}) | {_f(r['ndcg_least_active'])} / "
            f"{_f(r['ndcg_most_active'])} | {_pct(r['oon_share'])} / {_pct(r['oon_hit_share'])} "
            f"| {_pct(r['new_author_share'])} |"
        )
    (RESULTS / "privacy.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None, help="one dataset of the profile only")
    ap.add_argument("--from", dest="source", type=Path, default=None)
    args = ap.parse_args()
    wall = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        study = args.source or Path(tmp) / "study"
        if args.source is None:
            wall = run_study(study, args.dataset)
        results = json.loads((study / "results.json").read_text())
    argv = ["python benchmarks/bench_privacy.py"] + (
        [f"--dataset {args.dataset}"] if args.dataset else []
    )
    d = {
        **tables(results),
        "command": " ".join(argv),
        "wall_s": wall,
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, Python {platform.python_version()}",
    }
    write(d)
    print(f"wrote {RESULTS / 'privacy.md'}")


if __name__ == "__main__":
    main()
