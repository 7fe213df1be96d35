"""`serendip serve` as a child process on a free loopback port: what the crash tests and the load
benchmark run (a real server process, killable, with its output in a log file)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from serendip.errors import SerendipError

__all__ = ["ServeProcess", "free_port"]


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`serendip serve --db DB_URL --artifacts WORKDIR/artifacts --port <free>`, its output in
    `WORKDIR/server-<port>.log`; `env` is added to this process's environment (API keys are
    dropped: the server binds to loopback without them); `args` are more `serve` options
    (`--workers 2`)."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / f"server-{self.port}.log"
        self.started = time.perf_counter()
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, "SERENDIP_LOG_LEVEL": "warning", **(env or {})}
        full_env.pop("SERENDIP_API_KEYS", None)
        command = Path(sys.executable).with_name("serendip")  # the console script beside python
        self.proc = subprocess.Popen(
            [
                str(command),
                "serve",
                "--db",
                db_url,
                "--artifacts",
                str(Path(workdir) / "artifacts"),
                "--port",
                str(self.port),
                *args,
            ],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, path: str = "/healthz", timeout: float = 30.0) -> float:
        """Seconds from the spawn until `path` answers 200; `SerendipError` (with the end of
        the log) when the process exits first or `timeout` passes."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise SerendipError(f"the server exited ({self.proc.returncode}): {tail}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SerendipError(f"{path} did not answer 200 within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up (a crash)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
