"""Storage-level event ingestion: events/s into SQLite (WAL, synchronous=FULL) and PostgreSQL.

Calls `Store.events.add_batch` directly (no HTTP; `bench_serve.py` measures the API on top),
with each batch a committed, durable transaction, as the API does before acknowledging. Per
backend and batch size it measures:

- new events: `--events` fresh events into a table that already holds the earlier runs' rows
  (so indexes are warm and growing, not an empty-table best case);
- replay: the same events sent again (all duplicates: the idempotent-retry path);
- single events: `add` one at a time (one commit, one fsync each), the worst case.

Writes benchmarks/results/ingest.md and ingest.json from the run.

    .venv/bin/python benchmarks/bench_ingest.py                       # both backends
    .venv/bin/python benchmarks/bench_ingest.py --events 20000 --backends sqlite
    .venv/bin/python benchmarks/bench_ingest.py --postgres-url postgresql+psycopg://u@h/db

PostgreSQL runs in a fresh schema that is dropped afterwards; it is skipped (and the table
says so) when the server is not reachable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from serendip.cli._common import progress
from serendip.data.dataset import EVENT_TYPES
from serendip.store import MAX_BATCH, EventIn, Store
from serendip.store.scratch import scratch_schema

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def make_events(n: int, seed: int, prefix: str) -> list[EventIn]:
    """n synthetic events: 10K users, 100K items (Zipf-ish popularity), mixed event types."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 10_000, n)
    items = np.minimum(rng.zipf(1.3, n), 100_000)
    kinds = rng.choice(len(EVENT_TYPES) - 1, n, p=[0.6, 0.2, 0.12, 0.05, 0.03])
    ts = 1.7e9 + np.sort(rng.uniform(0, 86_400 * 30, n))
    return [
        EventIn(
            f"{prefix}-{i}", f"u{users[i]}", f"i{items[i]}", EVENT_TYPES[kinds[i]], float(ts[i])
        )
        for i in range(n)
    ]


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="serendip-bench-") as d:
        yield f"sqlite:///{Path(d) / 'ingest.db'}"


def backend_info(store: Store) -> str:
    with store.database.read() as conn:
        if store.backend == "sqlite":
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
            sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
                int(conn.execute(text("PRAGMA synchronous")).scalar() or 0)
            ]
            return f"SQLite {sqlite3.sqlite_version}, journal_mode={mode}, synchronous={sync}"
        version = conn.execute(text("SHOW server_version")).scalar()
        commit = conn.execute(text("SHOW synchronous_commit")).scalar()
        fsync = conn.execute(text("SHOW fsync")).scalar()
        return f"PostgreSQL {version}, synchronous_commit={commit}, fsync={fsync}"


def timed_batches(store: Store, events: list[EventIn], batch: int, label: str) -> dict[str, Any]:
    accepted = duplicates = 0
    latencies = []
    with progress(transient=True) as bar:
        task = bar.add_task(label, total=len(events))
        start = time.perf_counter()
        for i in range(0, len(events), batch):
            t = time.perf_counter()
            r = store.events.add_batch(events[i : i + batch])
            latencies.append(time.perf_counter() - t)
            accepted += r.accepted
            duplicates += r.duplicates
            bar.advance(task, min(batch, len(events) - i))
        wall = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {
        "events": len(events),
        "accepted": accepted,
        "duplicates": duplicates,
        "seconds": round(wall, 3),
        "events_per_s": round(len(events) / wall),
        "batch_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "batch_ms_p99": round(float(np.percentile(lat, 99)), 2),
    }


def run_backend(url: str, backend: str, n: int, batches: list[int], singles: int) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "runs": []}
    with Store.open(url) as store:
        out["settings"] = backend_info(store)
        for b in batches:
            events = make_events(n, seed=b, prefix=f"b{b}")
            before = store.events.count()
            fresh = timed_batches(store, events, b, f"{backend} batch {b}: new")
            replay = timed_batches(store, events, b, f"{backend} batch {b}: replay")
            assert fresh["accepted"] == n and replay["duplicates"] == n
            assert store.events.count() == before + n  # every acknowledged event is stored
            out["runs"].append({"batch": b, "rows_before": before, "new": fresh, "replay": replay})
        ones = make_events(singles, seed=1, prefix="single")
        t = time.perf_counter()
        for e in ones:
            store.events.add(e)
        wall = time.perf_counter() - t
        out["single"] = {
            "events": singles,
            "seconds": round(wall, 3),
            "events_per_s": round(singles / wall),
        }
        out["rows_total"] = store.events.count()
    return out


def write_results(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Event ingestion into the store (storage level)",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}  ",
        f"Run at: {results['when']} UTC; load average at start {results['loadavg']}",
        "",
        "Each batch is one `Store.events.add_batch` call: validated, inserted with "
        "`ON CONFLICT (event_id) DO NOTHING`, committed and durable before it returns. "
        "*new*: fresh events into a table already holding the earlier rows; *replay*: the "
        "same events again (all duplicates, the client-retry path).",
        "",
        "| backend | batch | rows before | new events/s | batch p50 ms | batch p99 ms "
        "| replay events/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for be in results["backends"]:
        if "skipped" in be:
            lines.append(f"| {be['backend']} | skipped: {be['skipped']} | | | | | |")
            continue
        for r in be["runs"]:
            lines.append(
                f"| {be['backend']} | {r['batch']:,} | {r['rows_before']:,} "
                f"| {r['new']['events_per_s']:,} | {r['new']['batch_ms_p50']} "
                f"| {r['new']['batch_ms_p99']} | {r['replay']['events_per_s']:,} |"
            )
    lines += [
        "",
        "| backend | settings | single-event `add` events/s | rows at end |",
        "|---|---|---:|---:|",
    ]
    for be in results["backends"]:
        if "skipped" not in be:
            lines.append(
                f"| {be['backend']} | {be['settings']} | {be['single']['events_per_s']:,} "
                f"| {be['rows_total']:,} |"
            )
    lines.append("")
    (RESULTS / "ingest.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=100_000, help="events per batch-size run")
    ap.add_argument("--batch-sizes", default="100,1000,10000")
    ap.add_argument("--singles", type=int, default=300, help="events sent one at a time")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--postgres-url", default=os.environ.get("SERENDIP_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    args = ap.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    if any(b < 1 or b > MAX_BATCH for b in batches):
        ap.error(f"batch sizes must be 1..{MAX_BATCH}")

    cmd = "python benchmarks/bench_ingest.py " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k != "postgres_url" and v != ap.get_default(k)
    )
    results: dict[str, Any] = {
        "command": cmd.strip(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "loadavg": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "backends": [],
    }
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with sqlite_url() as url:
                results["backends"].append(
                    run_backend(url, "sqlite", args.events, batches, args.singles)
                )
        elif backend == "postgres":
            try:
                with scratch_schema(args.postgres_url, "bench") as url:
                    results["backends"].append(
                        run_backend(url, "postgresql", args.events, batches, args.singles)
                    )
            except Exception as exc:  # unreachable server: say so in the table
                if "OperationalError" not in type(exc).__name__:
                    raise
                results["backends"].append(
                    {"backend": "postgresql", "skipped": str(exc).splitlines()[0]}
                )
        else:
            ap.error(f"unknown backend {backend!r}; valid: sqlite, postgres")
    write_results(results)
    print((RESULTS / "ingest.md").read_text())


if __name__ == "__main__":
    main()
