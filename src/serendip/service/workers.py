"""`serendip serve --workers N`: N server processes on one host and port.

Recommending is CPU-bound Python under one GIL, so one process uses one core. The supervisor
here binds the listening socket once and starts N worker processes (spawned, not forked: each
imports afresh and opens its own store connection) that all accept on it; the kernel hands each
new connection to one of them. What keeps them one server:

- the model: each worker memory-maps the active version's arrays read-only, so the page cache
  holds one copy for all (`docs/deployment.md`); a version activated anywhere reaches every
  worker through its watcher (the store's active version, atomic swap);
- the live state: each worker applies the others' writes from the store (`follower`), so an
  event acknowledged by one changes the user's next list on every worker within
  `follow_store_s` (1 s by default);
- the roles: worker 0 leads (`Settings.leads`): the first start on an empty store, precomputed
  lists a version lacks (the others adopt them once saved) and the retention purge. The
  others wait for the first model and load it through the watcher;
- the metrics: Prometheus multiprocess mode (a shared directory of memory-mapped value files),
  so `/metrics` on any worker reports the sum over all of them (`ServiceMetrics`).

A worker that exits while the server runs is started again (its metrics files are marked dead);
one that keeps failing at start stops the server with exit status 1. SIGTERM or SIGINT stop
every worker gracefully, then the supervisor exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from serendip.errors import ConfigError
from serendip.service.settings import Settings

__all__ = ["MULTIPROC_ENV", "Supervisor", "auto_workers", "run_workers"]

log = logging.getLogger("serendip.service")

#: The environment variable of prometheus_client's multiprocess mode (set for the workers).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A worker that exits within this many seconds of its start counts as failing to start...
_EARLY_EXIT_S = 30.0
#: ... and this many such exits in a row stop the server.
_MAX_EARLY_EXITS = 3
#: Seconds a worker has to stop after SIGTERM before it is killed.
_STOP_TIMEOUT_S = 20.0


def auto_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket the workers share (IPv6 when `host` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # a response written in two parts waits for the client's delayed ACK (40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_main(overrides: Mapping[str, object], index: int, sock: socket.socket) -> None:
    """One worker process: its settings (from the environment and the CLI's options, as the
    supervisor's), its role, then the server on the shared socket."""
    from serendip.service.server import run_server

    options: dict[str, Any] = {**overrides, "worker_index": index}  # typed by Settings
    settings = Settings(**options)
    if not settings.leads:
        settings = settings.model_copy(update={"retention_days": None})
    run_server(settings, sockets=[sock])


@dataclass
class _Worker:
    process: BaseProcess
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts, watches and stops the worker processes (see the module docstring)."""

    def __init__(self, settings: Settings, overrides: Mapping[str, object], n: int) -> None:
        if n < 1:
            raise ConfigError(f"workers must be at least 1, got {n}")
        if n > 1 and settings.follow_store_s <= 0:
            raise ConfigError(
                "several workers need follow_store_s > 0: each applies the others' writes "
                "from the store"
            )
        self.settings, self.n = settings, n
        self.overrides = {**overrides, "workers": n}
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stop = threading.Event()
        self._early_exits = 0
        self.metrics_dir = tempfile.mkdtemp(prefix="serendip-metrics-")
        self.sock: socket.socket | None = None

    @property
    def port(self) -> int:
        assert self.sock is not None
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        """Bind the socket and start every worker."""
        self.sock = bind_socket(self.settings.host, self.settings.port)
        os.environ[MULTIPROC_ENV] = self.metrics_dir  # inherited by the spawned workers
        for index in range(self.n):
            self._spawn(index)
        log.info(
            "%d workers serving on %s:%d (worker 0 leads; pids %s)",
            self.n,
            self.settings.host,
            self.port,
            ", ".join(str(w.process.pid) for w in self._workers.values()),
        )

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(self.overrides, index, self.sock),
            name=f"serendip-worker-{index}",
        )
        process.start()
        self._workers[index] = _Worker(process)

    def watch(self, every_s: float = 0.5) -> int:
        """Restart workers that exit until `stop()`; returns the exit status (1 when a worker
        kept failing at its start)."""
        while not self._stop.wait(every_s):
            for index, worker in list(self._workers.items()):
                if worker.process.is_alive() or self._stop.is_set():
                    continue
                code = worker.process.exitcode
                self._mark_dead(worker)
                early = time.monotonic() - worker.started < _EARLY_EXIT_S
                self._early_exits = self._early_exits + 1 if early else 0
                if self._early_exits >= _MAX_EARLY_EXITS:
                    log.error(
                        "worker %d exited with status %s %d times in a row at its start; "
                        "stopping the server (see its log above)",
                        index,
                        code,
                        self._early_exits,
                    )
                    self.stop()
                    return 1
                log.warning("worker %d exited with status %s; starting it again", index, code)
                self._spawn(index)
        return 0

    def request_stop(self) -> None:
        """Make `watch` return (from a signal handler); `stop` then ends the workers."""
        self._stop.set()

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after a timeout) and clean up."""
        self._stop.set()
        for worker in self._workers.values():
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for worker in self._workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        if self.sock is not None:
            self.sock.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == self.metrics_dir:
            del os.environ[MULTIPROC_ENV]

    def _mark_dead(self, worker: _Worker) -> None:
        from prometheus_client import multiprocess

        if worker.process.pid is not None:
            # its live gauges leave the sums
            multiprocess.mark_process_dead(worker.process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]


def run_workers(settings: Settings, overrides: Mapping[str, object], n: int) -> int:
    """Run `n` workers until SIGTERM or SIGINT (blocking); returns the exit status."""
    supervisor = Supervisor(settings, overrides, n)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping %d workers (%s)", supervisor.n, signal.Signals(signum).name)
        supervisor.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.start()
        code = supervisor.watch()
    finally:
        supervisor.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
