"""`serendip serve --workers N` (issue 17.2): one port, N processes, one server to its clients."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serendip.errors import ConfigError
from serendip.service.app import create_app
from serendip.service.process import ServeProcess
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.service.workers import Supervisor, auto_workers, bind_socket
from serendip.store import Store


def _eventually(check: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def _count(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", metrics, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_several_workers_need_the_follower() -> None:
    settings = Settings(follow_store_s=0)
    with pytest.raises(ConfigError, match="follow_store_s"):
        Supervisor(settings, {}, 2)
    with pytest.raises(ConfigError, match="at least 1"):
        Supervisor(Settings(), {}, 0)
    assert auto_workers() >= 1


def test_a_taken_port_is_one_clear_error() -> None:
    first = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            bind_socket("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


def test_only_worker_zero_leads() -> None:
    assert Settings().leads and Settings(worker_index=0, workers=4).leads
    assert not Settings(worker_index=1, workers=4).leads


def test_a_worker_that_does_not_lead_waits_for_the_first_model_then_loads_it(
    sqlite_store: Store, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    # an empty store: worker 0 makes the first start; worker 1 waits, then its watcher loads
    # the version worker 0 activates, with the events stored meanwhile replayed once
    settings = Settings(db_url=sqlite_store.url, workers=2, worker_index=1, follow_store_s=0.1)
    app = create_app(settings, store=sqlite_store)
    app.state.model_watch_s = 0.1
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and "worker 0" in r.json()["reason"]
        assert r.json()["worker"] == 1
        sqlite_store.import_dataset(toy_platform)
        user, item = str(toy_platform.users.ids[0]), str(toy_platform.items.ids[3])
        ev = {"event_id": "early-1", "user": user, "item": item, "event": "like"}
        assert client.post("/v1/events", json=ev).json()["accepted"] == 1
        sqlite_store.models.register("item-knn", str(model_dirs["item-knn"]), {}, version="v1")
        sqlite_store.models.activate("v1")
        assert _eventually(lambda: client.get("/readyz").status_code == 200)
        runtime: ModelRuntime = app.state.runtime
        assert [i for i, _, _ in runtime.state.history(user)].count(item) == 1
        assert not runtime.build_in_background  # the leader builds missing lists


@pytest.mark.slow
def test_two_workers_share_one_port_and_act_as_one_server(
    db_url: str, tmp_path: Path, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    store = Store.open(db_url)
    try:
        store.import_dataset(toy_platform)
        store.models.register("item-knn", str(model_dirs["item-knn"]), {}, version="v1")
        store.models.activate("v1")
    finally:
        store.close()
    env = {
        "SERENDIP_BOOTSTRAP": "false",
        "SERENDIP_FOLLOW_STORE_S": "0.2",
        "SERENDIP_LOG_LEVEL": "info",  # the supervisor's line naming the workers' pids
    }
    server = ServeProcess(db_url, tmp_path, env, args=["--workers", "2"])
    try:
        server.wait("/readyz", 180)
        user = str(toy_platform.users.ids[2])
        path = f"/v1/users/{user}/recommendations"

        def fresh() -> httpx.Client:  # a new connection: the kernel picks the worker
            return httpx.Client(base_url=server.url, timeout=10)

        def ready_workers() -> set[int]:
            seen = set()
            for _ in range(40):
                with fresh() as c:
                    r = c.get("/readyz")
                    if r.status_code == 200:
                        seen.add(r.json()["worker"])
            return seen

        # both workers serve the active version (the second loads it as the first did)
        assert _eventually(lambda: ready_workers() == {0, 1}, 60)
        with fresh() as c:
            top = c.get(path, params={"k": 5}).json()["items"][0]["item"]
            ev = {"event_id": "w-1", "user": user, "item": top, "event": "like"}
            assert c.post("/v1/events", json=ev).json()["accepted"] == 1

        def seen_everywhere() -> bool:  # the liked item leaves the user's lists on every worker
            for _ in range(10):
                with fresh() as c:
                    items = [x["item"] for x in c.get(path, params={"k": 50}).json()["items"]]
                    if top in items:
                        return False
            return True

        assert _eventually(seen_everywhere)
        # /metrics on any worker reports the whole server's requests
        with fresh() as c:
            before = _count(
                c.get("/metrics").text, "serendip_events_ingested_total", outcome="accepted"
            )
        assert before == 1.0
        for _ in range(20):
            with fresh() as c:
                assert c.get(path, params={"k": 5}).status_code == 200
        with fresh() as c:
            text = c.get("/metrics").text
        route = "/v1/users/{user_id}/recommendations"
        served = _count(
            text, "serendip_http_request_duration_seconds_count", method="GET", route=route
        )
        assert served >= 20 + 1
        per_path = re.findall(r'^serendip_recommend_path_requests\{path="\w+"\} (\S+)$', text, re.M)
        assert sum(float(v) for v in per_path) >= 20 + 1  # every worker's share, summed
        # a worker that dies is started again; the server keeps answering meanwhile
        pid_line = [ln for ln in server.log_path.read_text().splitlines() if "pids" in ln]
        assert pid_line, server.log_path.read_text()[-2000:]
        pids = [int(p) for p in re.findall(r"\d+", pid_line[-1].split("pids")[-1])]
        os.kill(pids[1], signal.SIGKILL)
        with fresh() as c:
            assert c.get("/healthz").status_code == 200
        assert _eventually(lambda: ready_workers() == {0, 1}, 120)
    finally:
        server.stop()
    assert server.proc.returncode == 0


def test_the_shared_socket_is_tcp_so_responses_are_not_delayed() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; a 0 there cost
    # every response 40 ms (the client's delayed ACK) under `--workers`
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
