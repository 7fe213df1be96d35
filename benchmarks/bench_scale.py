"""The whole loop at three platform sizes (issue 17.7): what the recommender needs, measured.

For each size -- the `small` preset (5K users, 20K items, 400K events), ten times it (50K
users, 200K items, 4M events) and the `platform` preset (100K users, 1M items, 20M events) --
one run of the production loop on this machine, every stage in its own process:

1. import: the generated platform into a fresh SQLite store (`Store.import_dataset`, what a
   first start runs on an empty store);
2. retrain: the default model (the pipeline, default parameters) fitted on every stored event,
   its ANN and inverted indexes built, and its ranked candidates and final lists precomputed for
   every user, registered and activated (`fit_and_register`: what a server's retrain runs);
3. batch: top-50 for every user through `serendip recommend --users all --k 50`;
4. serve: `serendip serve` restarted on that store (restart to `/readyz`), then open-loop
   load (k=20 with explanations, users drawn from the fitted users plus 10% unknown ones) at
   rising rates until p99 passes 100 ms: the highest rate held is the process's capacity.

Per stage: wall and CPU seconds (the stage's processes, workers included), peak resident memory
(the process tree's, sampled every 0.2 s) and what it leaves on disk. The measured points and
a log-log cost curve fitted through them (extrapolated to 10x and 100x the platform's users)
go to `benchmarks/results/scale.json` (schema serendip-scale/1), which `serendip report` reads.

    python benchmarks/bench_scale.py                              # every size
    python benchmarks/bench_scale.py --size small --size x10      # some (others keep their rows)
    python benchmarks/bench_scale.py --cache /work/plat           # keep generated data there

Writes benchmarks/results/scale.json (the scale file), scale-stages.json (every number) and
scale-stages.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform as platform_mod
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

#: name -> (preset, overrides of the generator's config, label)
SIZES: dict[str, tuple[str, dict[str, Any], str]] = {
    "small": ("small", {}, "small preset"),
    "x10": (
        "small",
        {"n_users": 50_000, "n_items": 200_000, "n_interactions": 4_000_000},
        "10x small",
    ),
    "platform": ("platform", {}, "platform preset"),
}
RATES = (50, 100, 200, 400, 800, 1600)
P99_MS = 100.0
SEED = 42


@dataclass
class StageCost:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    disk_mib: float | None = None
    #: peak proportional set size of the tree: a page shared by n processes (the memory-mapped
    #: artifact every precompute worker maps) counts 1/n in each, so the sum is what the
    #: machine holds; the RSS sum counts such a page once per process
    peak_pss_mib: float | None = None


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _tree_pss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error, AttributeError):  # pss: Linux only
            total += p.memory_full_info().pss
    return total


def _disk_mib(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run_stage(cmd: list[str], *, log: Path, env: dict[str, str] | None = None) -> StageCost:
    """Run `cmd` to its end; its wall, CPU (it and every process it waited for) and the peak
    of its process tree's resident memory. Raises with the log's tail when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        ps = psutil.Process(proc.pid)
        peak = peak_pss = 0
        tick = 0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, _tree_rss(ps))
                if tick % 5 == 0:  # smaps is slower to read: once a second
                    peak_pss = max(peak_pss, _tree_pss(ps))
            tick += 1
            time.sleep(0.2)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    pss = round(peak_pss / 2**20) if peak_pss else None
    return StageCost(round(wall, 1), round(cpu, 1), round(peak / 2**20), peak_pss_mib=pss)


def _save_progress(work: Path, stages: dict[str, Any]) -> None:
    """The stages done so far, in the size's work directory (a run cut short keeps them)."""
    (work / "stages.json").write_text(json.dumps(stages, indent=2) + "\n")


def _last_json(log: Path) -> dict[str, Any]:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            out: dict[str, Any] = json.loads(line)
            return out
    raise RuntimeError(f"no result line in {log}")


# ----------------------------------------------------------------------------- stages (child)
def stage_import(data: Path, db_url: str) -> None:
    from serendip.data.loaders import load_platform
    from serendip.store import Store

    store = Store.open(db_url)
    counts = store.import_dataset(load_platform(data))
    print(json.dumps(counts), flush=True)


def stage_retrain(db_url: str, artifacts: Path) -> None:
    from serendip.service.bootstrap import fit_and_register
    from serendip.service.settings import Settings
    from serendip.store import Store

    logging_to_stdout()
    settings = Settings(db_url=db_url, artifacts_dir=artifacts)
    store = Store.open(db_url)
    t0 = time.perf_counter()
    ds = store.to_dataset()
    read_s = time.perf_counter() - t0
    version = fit_and_register(store, ds, settings, source="store")
    store.models.activate(version.version)
    print(
        json.dumps(
            {
                "read_store_s": round(read_s, 1),
                "fit_interactions": len(ds.interactions),
                "artifact_dir": version.path,
                **{k: v for k, v in version.metrics.items() if isinstance(v, int | float)},
            }
        ),
        flush=True,
    )


def logging_to_stdout() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")


# ----------------------------------------------------------------------------- serving
def serve_stage(db_url: str, workdir: Path, users: list[str], duration: float) -> dict[str, Any]:
    from bench_serve import Server, run_load

    rss_peak = [0]
    server = Server(db_url, workdir, {"SERENDIP_BOOTSTRAP": "false"})
    stop = threading.Event()

    def sample() -> None:
        ps = psutil.Process(server.proc.pid)
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                rss_peak[0] = max(rss_peak[0], _tree_rss(ps))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        ready_s = server.wait("/readyz", timeout=1800)
        rows = []
        for rate in RATES:
            r = run_load(server, users, rate, duration, SEED)
            rows.append(asdict(r))
            print(f"    {rate} req/s: p99 {r.p99_ms} ms, errors {r.errors}", flush=True)
            if not r.held:
                break
    finally:
        stop.set()
        server.kill()
    held = [r for r in rows if r["errors"] == 0 and r["p99_ms"] <= P99_MS]
    at200 = next((r for r in rows if r["rate"] == 200), None)
    return {
        "restart_to_ready_s": round(ready_s, 1),
        "peak_rss_mib": round(rss_peak[0] / 2**20),
        "rates": rows,
        "capacity_rps": max((r["rate"] for r in held), default=0),
        "p99_ms_at_200": at200["p99_ms"] if at200 else None,
        "cpu_ms_per_request_at_200": at200["server_cpu_ms"] if at200 else None,
    }


# ----------------------------------------------------------------------------- one size
def run_size(
    name: str, cache: Path, work: Path, duration: float, reuse_store: bool = False
) -> dict[str, Any]:
    from serendip.data.loaders import load_platform
    from serendip.data.synthetic import generate_platform

    preset, overrides, label = SIZES[name]
    data = cache / f"{name}-seed{SEED}"
    gen_s = None
    if not (data / "manifest.json").exists():
        t0 = time.perf_counter()
        generate_platform(preset, seed=SEED, out=data, **overrides)
        gen_s = round(time.perf_counter() - t0, 1)
    ds = load_platform(data)
    print(f"[{name}] {ds}", flush=True)
    users = [str(u) for u in ds.users.ids]
    rng = np.random.default_rng(SEED)
    sample = list(rng.choice(users, size=min(5000, len(users)), replace=False))
    sample += [f"unknown-{i}" for i in range(len(sample) // 10)]
    n_users, n_items, n_inter = ds.n_users, ds.n_items, ds.n_interactions
    del ds

    db = work / "store.db"
    db_url = f"sqlite:///{db}"
    me = [sys.executable, str(Path(__file__).resolve())]
    stages: dict[str, Any] = {}
    progress = work / "stages.json"
    if reuse_store and db.exists() and progress.exists():
        # the store an earlier run imported (its import row kept), the later stages rerun
        stages["import"] = json.loads(progress.read_text())["import"]
        for old in work.glob("artifacts"):
            shutil.rmtree(old)
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        print(f"[{name}] import", flush=True)
        cost = run_stage([*me, "--stage", "import", "--data", str(data), "--db", db_url],
                         log=work / "import.log")  # fmt: skip
        cost.disk_mib = round(_disk_mib(db))
        stages["import"] = asdict(cost)
        _save_progress(work, stages)

    print(f"[{name}] retrain", flush=True)
    artifacts = work / "artifacts"
    cost = run_stage(
        [*me, "--stage", "retrain", "--db", db_url, "--artifacts", str(artifacts)],
        log=work / "retrain.log",
    )
    detail = _last_json(work / "retrain.log")
    model_dir = Path(detail["artifact_dir"])
    lists = model_dir / "serving-lists"
    cost.disk_mib = round(_disk_mib(model_dir))
    stages["retrain"] = {**asdict(cost), **detail, "lists_mib": round(_disk_mib(lists))
                         if lists.exists() else None}  # fmt: skip
    _save_progress(work, stages)

    print(f"[{name}] batch top-50", flush=True)
    out = work / "top50.csv"
    serendip = str(Path(sys.executable).with_name("serendip"))
    cmd = [serendip, "recommend", "--model-dir", str(model_dir), "--users", "all", "--k", "50"]
    cost = run_stage([*cmd, "--out", str(out)], log=work / "batch.log")
    cost.disk_mib = round(_disk_mib(out))
    stages["batch_top50"] = asdict(cost)
    _save_progress(work, stages)
    out.unlink()

    print(f"[{name}] serve", flush=True)
    stages["serve"] = serve_stage(db_url, work, sample, duration)
    return {
        "name": name,
        "label": label,
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "generate_s": gen_s,
        "stages": stages,
    }


# ----------------------------------------------------------------------------- outputs
def scale_point(run: dict[str, Any], machine: str) -> dict[str, Any]:
    # a run cut short has no batch or serve stage: those metrics are left unmeasured
    st = run["stages"]
    rt, batch, serve = st["retrain"], st.get("batch_top50") or {}, st.get("serve") or {}
    src = "benchmarks/results/scale-stages.json"
    # the machine's memory need: PSS where measured (RSS sums count shared mappings per process)
    peaks = [
        x
        for x in (
            rt.get("peak_pss_mib") or rt["peak_rss_mib"],
            batch.get("peak_pss_mib") or batch.get("peak_rss_mib"),
        )
        if x is not None
    ]
    capacity = serve.get("capacity_rps")
    metrics: dict[str, float | None] = {
        "fit_wall_s": rt.get("fit_seconds"),
        "fit_cpu_s": None,
        "precompute_wall_s": rt.get("lists_seconds"),
        "first_start_wall_s": st["import"]["wall_s"] + rt["wall_s"],
        "peak_memory_mb": max(peaks) if peaks else None,
        "artifact_mb": rt["disk_mib"] - (rt.get("lists_mib") or 0),
        "lists_mb": rt.get("lists_mib"),
        "restart_to_ready_s": serve.get("restart_to_ready_s"),
        "serve_p99_ms": serve.get("p99_ms_at_200"),
        "serve_cpu_ms_per_request": serve.get("cpu_ms_per_request_at_200"),
        "serve_capacity_rps": None if capacity is None else float(capacity),
    }
    return {
        "name": run["name"],
        "users": run["users"],
        "items": run["items"],
        "interactions": run["interactions"],
        "fit_interactions": int(rt["fit_interactions"]),
        "measured": True,
        "machine": machine,
        "sources": {k: src for k, v in metrics.items() if v is not None},
        "metrics": metrics,
    }


def _stage_lines(run: dict[str, Any], size: str, *, with_disk: bool) -> list[str]:
    """Table rows `| size | stage | wall | CPU | peak [| disk] |` of a run's batch stages."""
    out = []
    for stage in ("import", "retrain", "batch_top50"):
        s = run["stages"].get(stage)
        cells = (
            ["not run", "", "", ""]
            if s is None
            else [
                str(s["wall_s"]),
                _cell(s["cpu_s"]),
                _cell(s["peak_rss_mib"]),
                _cell(s.get("peak_pss_mib")),
            ]
        )
        if with_disk:
            cells.append("" if s is None else _cell(s["disk_mib"]))
        out.append(f"| {size} | {stage} | " + " | ".join(cells) + " |")
    return out


def _cell(x: float | None) -> str:
    return "–" if x is None else f"{x:,}"


def write_outputs(runs: dict[str, dict[str, Any]], env: dict[str, Any]) -> None:
    from serendip.reporting.scale import (
        CURVE,
        SCHEMA,
        fit_interactions_for,
        loglog_slope,
        parse_scale,
        project,
        write_scale,
    )

    order = [n for n in SIZES if n in runs]
    points = [scale_point(runs[n], env["machine"]) for n in order]
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_by": "benchmarks/bench_scale.py",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "curve": CURVE,
        "points": points,
    }
    measured = parse_scale(doc)
    ref = max(measured.measured, key=lambda p: p.users)
    for factor in (10, 100):
        users = ref.users * factor
        proj = project(measured, users)
        doc["points"].append(
            {
                "name": f"{factor}x {ref.name} (projected)",
                "users": users,
                "items": ref.items * factor,
                "interactions": ref.interactions * factor,
                "fit_interactions": fit_interactions_for(measured, users),
                "measured": False,
                "machine": "",
                "sources": {k: v.source for k, v in proj.items() if v.value is not None},
                "metrics": {k: v.value for k, v in proj.items()},
            }
        )
    write_scale(doc, RESULTS / "scale.json")
    (RESULTS / "scale-stages.json").write_text(
        json.dumps({"env": env, "runs": runs}, indent=2) + "\n"
    )
    final = parse_scale(doc)
    slopes = {m: loglog_slope(final, m) for m in ("fit_wall_s", "peak_memory_mb", "artifact_mb")}
    lines = [
        "# The whole loop at three sizes: infrastructure requirements, measured (issue 17.7)",
        "",
        f"- Machine: {env['machine']}. Commands, per size: "
        + "; ".join(
            f"{runs[n]['label']}: `{runs[n].get('command', env['command'])}` "
            f"({runs[n].get('when', env['when'])})"
            for n in order
        )
        + ".",
        "- Every stage in its own process; CPU = user + system of the stage's processes "
        "(precompute workers included); peak = the process tree's resident memory, sampled "
        "every 0.2 s, and its proportional set size (PSS: shared pages split among the "
        "processes that map them), every second; disk = what the stage leaves (store, artifact with its lists, CSV).",
        "- Retrain: the default pipeline on every stored event, then ranked candidates and "
        "final lists precomputed for every user (`fit_and_register`, as a server's retrain). "
        "Batch: `serendip recommend --users all --k 50`. Serve: restart to `/readyz`, then "
        f"open-loop k=20 with explanations at {', '.join(map(str, RATES))} req/s "
        "(seconds per rate: "
        + ", ".join(
            f"{runs[n]['label']} {runs[n].get('duration', env['duration']):g}" for n in order
        )
        + f") until p99 > {P99_MS:g} ms; users drawn from the fitted "
        "users plus 10% unknown ones.",
        "",
        "| size | users | items | events | stage | wall s | CPU s | peak RSS MiB | peak PSS MiB "
        "| disk MiB |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in order:
        r = runs[n]
        size = f"{r['label']} | {r['users']:,} | {r['items']:,} | {r['interactions']:,}"
        lines += _stage_lines(r, size, with_disk=True)
    lines += [
        "",
        "Retrain split and serving:",
        "",
        "| size | read store s | fit s | precompute s | restart to ready s | p99 ms at 200 "
        "req/s | server CPU ms/req | capacity req/s (p99 <= 100 ms) | serve peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in order:
        r = runs[n]
        rt, sv = r["stages"]["retrain"], r["stages"].get("serve") or {}
        lines.append(
            f"| {r['label']} | {rt.get('read_store_s')} | {rt.get('fit_seconds')} | "
            f"{rt.get('lists_seconds')} | {_cell(sv.get('restart_to_ready_s'))} | "
            f"{_cell(sv.get('p99_ms_at_200'))} | {_cell(sv.get('cpu_ms_per_request_at_200'))} | "
            f"{_cell(sv.get('capacity_rps'))} | {_cell(sv.get('peak_rss_mib'))} |"
        )
    lines += [
        "",
        f"Cost curve ({CURVE}); log-log slopes over the measured points: "
        + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items())
        + ".",
        "",
        "| point | users | measured | fit wall s | precompute s | peak MiB | artifact MiB | "
        "capacity req/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:,.0f}"

    for p in final.points:
        m = p.metrics
        lines.append(
            f"| {p.name} | {p.users:,} | {'yes' if p.measured else 'projected'} | "
            f"{fmt(m.get('fit_wall_s'))} | {fmt(m.get('precompute_wall_s'))} | "
            f"{fmt(m.get('peak_memory_mb'))} | {fmt(m.get('artifact_mb'))} | "
            f"{fmt(m.get('serve_capacity_rps'))} |"
        )
    lines.append("")
    (RESULTS / "scale-stages.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", choices=list(SIZES), default=None)
    ap.add_argument("--cache", type=Path, default=None, help="where generated platforms stay")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per serving rate")
    ap.add_argument("--assemble", action="store_true", help="rewrite the outputs from the JSON")
    ap.add_argument(
        "--reuse-store",
        action="store_true",
        help="keep a size's store from an earlier run (its import row) and rerun the rest",
    )
    ap.add_argument("--stage", choices=["import", "retrain"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--db", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--artifacts", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage == "import":
        stage_import(args.data, args.db)
        return
    if args.stage == "retrain":
        stage_retrain(args.db, args.artifacts)
        return
    sizes = args.size or list(SIZES)
    stages_file = RESULTS / "scale-stages.json"
    runs: dict[str, Any] = {}
    if stages_file.exists():
        runs = json.loads(stages_file.read_text()).get("runs", {})
    if args.assemble:  # the tables again from the stored runs (e.g. sizes run on other trees)
        write_outputs(runs, json.loads(stages_file.read_text())["env"])
        return
    env = {
        "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform_mod.machine()}, {os.cpu_count()} cores, "
        f"Python {platform_mod.python_version()}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration": args.duration,
    }
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "data"
        work_root = args.workdir or Path(tmp) / "work"
        for name in sizes:
            run = run_size(
                name, cache, work_root / name, args.duration, reuse_store=args.reuse_store
            )
            runs[name] = {**run, "command": env["command"], "when": env["when"],
                          "duration": args.duration}  # fmt: skip
            write_outputs(runs, env)


if __name__ == "__main__":
    main()


def summary(path: Path) -> tuple[list[str], str, str]:
    """(short table, verdict, a few words) for benchmarks/RESULTS.md (run_all.py)."""
    runs = json.loads(path.read_text())["runs"]
    table = [
        "| size | stage | wall s | CPU s | peak RSS MiB | peak PSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n in [n for n in SIZES if n in runs]:
        r = runs[n]
        table += _stage_lines(r, r["label"], with_disk=False)
        sv = r["stages"].get("serve")
        if sv:
            table.append(
                f"| {r['label']} | serve: capacity {sv['capacity_rps']} req/s at p99 <= 100 ms | "
                f"{sv['restart_to_ready_s']} to ready | | {_cell(sv['peak_rss_mib'])} | |"
            )
    plat = runs.get("platform")
    if plat is None or "batch_top50" not in plat["stages"]:
        return table, "measured; the scale file feeds the report", f"{len(runs)} sizes"
    rt, batch = plat["stages"]["retrain"], plat["stages"]["batch_top50"]
    memory = rt.get("peak_pss_mib") or rt["peak_rss_mib"]
    checks = {
        f"retrain {rt['wall_s'] / 60:.1f} min <= 30": rt["wall_s"] <= 1800,
        f"retrain peak {memory / 1024:.1f} GiB <= 16 "
        f"({'PSS' if rt.get('peak_pss_mib') else 'RSS sum'})": memory <= 16 * 1024,
        f"batch top-50 {batch['wall_s'] / 60:.1f} min <= 10": batch["wall_s"] <= 600,
    }
    verdict = "; ".join(f"{k}: {'met' if ok else 'missed'}" for k, ok in checks.items())
    met = "met" if all(checks.values()) else "missed"
    return table, f"platform preset: {verdict}; the scale file feeds the report", met
