"""Serving budget for active users (issue 17): p99 with live users and catalog churn, per worker count.

The issue's load: every requested user has 2-5 events since their last list, new items arrive
at one a second and some are deleted during the run, k=20 with explanations, open loop. For
each configuration (`--workers` x `--refresh-live`) this starts `serendip serve --workers W`
on one fitted store (the first start fits the default model when the store is empty, as
`bench_serve.py` does, and the work directory is shared with it), then for each rate:

1. gives every user of the configuration's pool (`--pool` platform users, a slice of its own)
   2-5 new `like` events through `POST /v1/events/batch` and waits until each worker has
   applied them (their follower) -- and, with `refresh_live`, until the background updates
   are done (the server's CPU idle again);
2. sends `GET /v1/users/{u}/recommendations?k=20&explain=true` for users drawn from the pool
   at the rate for `--duration` s, open loop (latency from the scheduled time: no coordinated
   omission), while a churn task adds one item a second and deletes one every 5 s.

Then it steps the rate up by 1.5x until p99 > 100 ms or a request fails, and reports the
highest rate held. Server CPU per request is the whole process tree's (supervisor and
workers, from psutil); the serving paths come from `/metrics` (summed over the workers).

    python benchmarks/bench_serve_live.py --preset small --workers 1,2 --refresh-live off,on
    python benchmarks/bench_serve_live.py --preset platform --platform-dir DIR --workdir DIR ...

Writes benchmarks/results/serve_live_<preset>.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shlex
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench_serve import LoadResult, _load, _platform_ids, drain, serve_workdir, tree_cpu_s
from serendip.service.process import ServeProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
P99_BUDGET_MS = 50.0
BUDGET_RATE = 200


@dataclass
class Rate:
    """One rate of one configuration: the open loop's result and what the run around it did."""

    workers: int
    refresh_live: bool
    load: LoadResult
    events_posted: int
    items_added: int
    items_deleted: int
    paths: dict[str, float] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return self.load.held

    def flat(self) -> dict[str, Any]:
        return {**asdict(self.load), **{k: v for k, v in asdict(self).items() if k != "load"}}


def wait_idle(pid: int, timeout: float = 300.0, busy_share: float = 0.1) -> float:
    """Wait until the server's process tree uses under `busy_share` of a core over 1 s."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        before = tree_cpu_s(pid)
        time.sleep(1.0)
        if tree_cpu_s(pid) - before < busy_share:
            break
    return time.perf_counter() - start


def serving_paths(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^serendip_recommend_path_requests\{path="(\w+)"\} (\S+)$', text, re.M
        )
    }


def post_events(url: str, pool: list[str], items: list[str], rng: random.Random, tag: str) -> int:
    """2-5 new likes for every user of the pool; returns how many were acknowledged."""
    now = time.time()
    events = [
        {
            "event_id": f"live-{tag}-{u}-{j}",
            "user": u,
            "item": rng.choice(items),
            "event": "like",
            "timestamp": now,
        }
        for u in pool
        for j in range(rng.randint(2, 5))
    ]
    acked = 0
    with httpx.Client(base_url=url, timeout=120) as c:
        for start in range(0, len(events), 5_000):
            r = c.post("/v1/events/batch", json={"events": events[start : start + 5_000]})
            r.raise_for_status()
            acked += int(r.json()["accepted"])
    return acked


async def _churn(url: str, items: list[str], stop: asyncio.Event, tag: str) -> tuple[int, int]:
    """One new item a second, one deletion every 5 s, until `stop`."""
    added = deleted = 0
    rng = random.Random(tag)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        tick = 0
        while not stop.is_set():
            body = {
                "items": [
                    {
                        "item": f"new-{tag}-{tick}",
                        "title": f"live post {tick}",
                        "category": "live",
                        "author": rng.choice(items),
                    }
                ]
            }
            if (await c.post("/v1/items", json=body)).status_code == 200:
                added += 1
            if tick % 5 == 4:
                victim = items[rng.randrange(len(items))]
                if (await c.post("/v1/items/delete", json={"items": [victim]})).status_code == 200:
                    deleted += 1
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    return added, deleted


async def _load_with_churn(
    url: str, pool: list[str], items: list[str], rate: int, duration: float, seed: int, tag: str
) -> tuple[LoadResult, tuple[int, int]]:
    """`bench_serve`'s open loop (k=20, pool users only, no warm-up: the first requests after
    the events are the ones that cost) while the catalog churns."""
    stop = asyncio.Event()
    churn = asyncio.create_task(_churn(url, items, stop, tag))
    result = await _load(
        url, pool, rate, duration, seed, query="?k=20&explain=true", cold_share=0.0, warm_up=False
    )
    stop.set()
    return result, await churn


def run_rate(
    server: ServeProcess,
    workers: int,
    refresh: bool,
    pool: list[str],
    items: list[str],
    rate: int,
    duration: float,
    seed: int,
) -> Rate:
    tag = uuid.uuid4().hex[:8]
    rng = random.Random(seed)
    drain(server.url)
    posted = post_events(server.url, pool, items, rng, tag)
    time.sleep(2.0)  # every worker's follower has applied them (1 s interval)
    if refresh:
        wait_idle(server.proc.pid)
    before_paths = serving_paths(server.url)
    cpu = tree_cpu_s(server.proc.pid)
    load, (added, deleted) = asyncio.run(
        _load_with_churn(server.url, pool, items, rate, duration, seed, tag)
    )
    cpu = tree_cpu_s(server.proc.pid) - cpu
    after_paths = serving_paths(server.url)
    load.server_cpu_ms = round(cpu / max(load.sent, 1) * 1000, 2)  # the whole process tree
    return Rate(
        workers=workers,
        refresh_live=refresh,
        load=load,
        events_posted=posted,
        items_added=added,
        items_deleted=deleted,
        # the paths counters restart at a model swap; none happens here
        paths={k: after_paths.get(k, 0.0) - before_paths.get(k, 0.0) for k in after_paths},
    )


def first_start(db_url: str, workdir: Path, env: dict[str, str], timeout: float) -> None:
    """Fit and activate the default model when the store has none (bench_serve's first start)."""
    if (workdir / "serendip.db").exists():
        return
    server = ServeProcess(db_url, workdir, env)
    try:
        t = server.wait("/readyz", timeout)
        print(f"first start: {t:.0f} s", file=sys.stderr)
        wait_idle(server.proc.pid, timeout=3600)  # the precomputed lists are built and saved
    finally:
        server.stop()


def write_report(result: dict[str, Any], out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Serving active users under catalog churn: `{result['preset']}` preset (issue 17)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Run at: {result['run_at']}; load average at start {result['load_before']}, at end "
        f"{result['load_after']}  ",
        f"Platform: `{result['preset']}` preset: {result['n_users']:,} users, "
        f"{result['n_items']:,} items; model `{result['model']}` (version {result['version']}); "
        "store SQLite.",
        "",
        "Before each rate, every user of the configuration's pool "
        f"({result['pool']:,} users) gets 2-5 new likes; during it, one new item a second and one "
        "deletion every 5 s; requests `k=20&explain=true` for pool users only, open loop. "
        "`refresh_live`: lists updated as events arrive (`SERENDIP_REFRESH_LIVE`), else on the "
        "user's next request. Server CPU: the whole process tree per request sent. Paths: the "
        "requests each serving path answered (incremental: precomputed candidates updated with "
        "the events; hit: a cached list; full: every source). With several workers and "
        "`refresh_live`, each worker updates the pool's lists as the events reach it; a "
        "worker's gauge reports its updates at its next request, so they show in the rate's "
        "paths although they ran before it. The load generator shares the machine's cores "
        "with the server.",
        "",
        "| workers | refresh_live | target req/s | sent | ok | errors | achieved req/s | p50 ms "
        "| p90 ms | p99 ms | max ms | server CPU ms/req | events before | items +/- | paths |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in result["rates"]:
        paths = ", ".join(f"{k} {int(v):,}" for k, v in sorted(r["paths"].items()) if v)
        lines.append(
            f"| {r['workers']} | {'on' if r['refresh_live'] else 'off'} | {r['rate']} | "
            f"{r['sent']:,} | {r['ok']:,} | {r['errors']} | {r['achieved_rps']} | {r['p50_ms']} | "
            f"{r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['server_cpu_ms']} | "
            f"{r['events_posted']:,} | +{r['items_added']}/-{r['items_deleted']} | {paths} |"
        )
    lines += [
        "",
        "| workers | refresh_live | highest rate held at p99 <= 100 ms | p99 at 200 req/s | budget (p99 <= 50 ms at 200 req/s, no errors) |",
        "|---:|---|---:|---:|---|",
    ]
    for c in result["configs"]:
        lines.append(
            f"| {c['workers']} | {'on' if c['refresh_live'] else 'off'} | "
            f"{c['highest_held'] if c['highest_held'] is not None else 'none'} | "
            f"{c['p99_at_200'] if c['p99_at_200'] is not None else '-'} | "
            f"{'met' if c['budget_met'] else 'missed'} |"
        )
    if result.get("note"):
        lines += ["", result["note"]]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare")
    ap.add_argument("--refresh-live", default="off,on", help="off, on or both")
    ap.add_argument("--rates", default="100,200")
    ap.add_argument("--max-rate", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--pool", type=int, default=1000, help="users per configuration")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--platform-dir", type=Path, default=None)
    ap.add_argument("--first-start-timeout", type=float, default=4 * 3600)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)

    from serendip.service.bootstrap import default_model_name

    model = default_model_name(None)
    workdir, db_url, env = serve_workdir(args, model)
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    run_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    first_start(db_url, workdir, env, args.first_start_timeout)
    users, items = _platform_ids(workdir, args.preset, args.seed)
    rng = random.Random(args.seed)
    rng.shuffle(users)

    rates: list[Rate] = []
    configs: list[dict[str, Any]] = []
    version = None
    slot = 0
    for workers in [int(w) for w in args.workers.split(",")]:
        for refresh in [m.strip() == "on" for m in args.refresh_live.split(",")]:
            pool = users[slot * args.pool : (slot + 1) * args.pool] or users[: args.pool]
            slot += 1
            server_env = {**env, "SERENDIP_REFRESH_LIVE": "true" if refresh else "false"}
            server = ServeProcess(db_url, workdir, server_env, args=["--workers", str(workers)])
            mine: list[Rate] = []
            try:
                server.wait("/readyz", 600)
                time.sleep(2.0 + workers)  # every worker has loaded the model
                version = httpx.get(server.url + "/readyz").json()["model_version"]
                wanted = [int(r) for r in args.rates.split(",")]
                for r in wanted:
                    mine.append(
                        run_rate(server, workers, refresh, pool, items, r, args.duration, r)
                    )
                    print(mine[-1].flat(), file=sys.stderr)
                rate = max(wanted)
                while mine[-1].held and rate < args.max_rate:
                    rate = int(rate * 1.5)
                    mine.append(
                        run_rate(server, workers, refresh, pool, items, rate, args.duration, rate)
                    )
                    print(mine[-1].flat(), file=sys.stderr)
            finally:
                server.stop()
            rates += mine
            held = [r.load.rate for r in mine if r.held]
            at200 = [r.load for r in mine if r.load.rate == BUDGET_RATE]
            configs.append(
                {
                    "workers": workers,
                    "refresh_live": refresh,
                    "highest_held": max(held) if held else None,
                    "p99_at_200": at200[0].p99_ms if at200 else None,
                    "budget_met": bool(
                        at200 and at200[0].errors == 0 and at200[0].p99_ms <= P99_BUDGET_MS
                    ),
                }
            )
    result = {
        "command": f"python benchmarks/bench_serve_live.py {shlex.join(argv if argv is not None else sys.argv[1:])}".strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "run_at": run_at,
        "load_before": load_before,
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "preset": args.preset,
        "n_users": len(users),
        "n_items": len(items),
        "model": model,
        "version": version,
        "pool": args.pool,
        "rates": [{**r.flat(), "held": r.held} for r in rates],
        "configs": configs,
        "note": args.note,
    }
    write_report(result, args.out, f"serve_live_{args.preset}")
    print(json.dumps(configs, indent=2))


if __name__ == "__main__":
    main()
