"""What the web framework costs per request, without sockets or a load generator (issue 6).

Starts the app in-process (FastAPI `TestClient`, bootstrap on the `tiny` preset into a temporary
directory), then times `GET /v1/users/{id}/recommendations?k=10&explain=true` over 50 users
(after one pass, so the runtime's per-user cache is warm) against `ModelRuntime.recommend` called
directly for the same users. The difference is the framework's share (routing, validation,
dependencies, JSON, the test client's thread hand-off).

    python benchmarks/bench_app_inprocess.py

Writes `benchmarks/results/app_inprocess.md|json`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from serendip.service.app import create_app
from serendip.service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def _p(ts: list[float], q: float) -> float:
    return sorted(ts)[min(len(ts) - 1, int(q * len(ts)))]


def main(n: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            db_url=f"sqlite:///{tmp}/serendip.db",
            artifacts_dir=Path(tmp) / "artifacts",
            bootstrap_preset="tiny",
            bootstrap_fast_model=None,  # measure the default model, not the first start's stand-in
        )
        app = create_app(settings)
        with TestClient(app) as client:
            for _ in range(1200):  # bootstrap: generate, import, fit
                if client.get("/readyz").status_code == 200:
                    break
                time.sleep(0.5)
            runtime = app.state.runtime
            users = [f"u{i}" for i in range(50)]
            url = "/v1/users/{}/recommendations?k=10&explain=true"
            for u in users:  # warm the per-user cache
                assert client.get(url.format(u)).status_code == 200
            http: list[float] = []
            for i in range(n):
                t = time.perf_counter()
                client.get(url.format(users[i % len(users)]))
                http.append((time.perf_counter() - t) * 1000)
            direct: list[float] = []
            for i in range(n):
                t = time.perf_counter()
                runtime.recommend(users[i % len(users)], 10, explain=True)
                direct.append((time.perf_counter() - t) * 1000)
    rows = {
        "http_in_process": {"p50_ms": statistics.median(http), "p99_ms": _p(http, 0.99)},
        "runtime_direct": {"p50_ms": statistics.median(direct), "p99_ms": _p(direct, 0.99)},
    }
    load = os.getloadavg()
    md = [
        "## The web framework's cost per request, in-process (issue 6)\n",
        "- Command: `python benchmarks/bench_app_inprocess.py`",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}",
        f"- `tiny` preset, pipeline model, warm per-user cache, k=10 with explanations, {n} "
        "requests over 50 users; FastAPI TestClient (no sockets).",
        "",
        "| path | p50 ms | p99 ms |",
        "|---|---:|---:|",
        *(f"| {k} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} |" for k, v in rows.items()),
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "app_inprocess.md").write_text("\n".join(md))
    (RESULTS / "app_inprocess.json").write_text(json.dumps({"n": n, **rows}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
