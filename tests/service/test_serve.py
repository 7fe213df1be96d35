"""`serendip serve` as a real process: the localhost rule, and durability under SIGKILL during
batch ingestion (every acknowledged event is there after a restart)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app as cli
from serendip.service.process import ServeProcess
from serendip.store import Store


def test_serve_refuses_public_host_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERENDIP_API_KEYS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "error: refusing to bind to 0.0.0.0 without API keys" in result.output


def test_serve_help() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--artifacts" in result.output


class Server(ServeProcess):
    """`serendip serve` in a subprocess, without the first-start bootstrap (ingestion needs no
    model), started and answering `/healthz`."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        super().__init__(db_url, tmp, {"SERENDIP_BOOTSTRAP": "false"})
        self.wait("/healthz", 30)


@pytest.mark.slow
def test_sigkill_during_ingestion_loses_no_acknowledged_event(db_url: str, tmp_path: Path) -> None:
    server = Server(db_url, tmp_path)
    acked: list[str] = []
    sent_batches: list[list[dict[str, object]]] = []
    stop = threading.Event()
    now = time.time()

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            b = 0
            while not stop.is_set():
                batch = [
                    {
                        "event_id": f"b{b}-{j}",
                        "user": f"u{j % 97}",
                        "item": f"i{(b * 7 + j) % 501}",
                        "event": "view",
                        "timestamp": now,
                    }
                    for j in range(250)
                ]
                sent_batches.append(batch)
                try:
                    r = http.post("/v1/events/batch", json={"events": batch})
                except httpx.HTTPError:
                    return  # the server died mid-request: this batch was never acknowledged
                assert r.status_code == 200, r.text
                acked.extend(e["event_id"] for e in batch)  # type: ignore[misc]
                b += 1

    poster = threading.Thread(target=post)
    poster.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 1_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acked) >= 1_000, "ingestion too slow to test"
        server.kill()  # most likely while a batch is in flight
    finally:
        stop.set()
        poster.join(timeout=30)
        if server.proc.poll() is None:
            server.stop()

    restarted = Server(db_url, tmp_path)
    try:
        store = Store.open(db_url)
        try:
            stored = {e.event_id for e in store.events.since(0)}
        finally:
            store.close()
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
        # the client retries the batch it got no answer for: idempotent, nothing doubled
        last = sent_batches[-1]
        r = httpx.post(f"{restarted.url}/v1/events/batch", json={"events": last}, timeout=30)
        assert r.status_code == 200 and r.json()["accepted"] + r.json()["duplicates"] == len(last)
    finally:
        restarted.stop()


def test_serve_bad_database_url_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--db", "mysql://x@h/db", "--port", "1"])
    assert result.exit_code == 1
    assert "error: unsupported database URL scheme 'mysql'" in result.output
