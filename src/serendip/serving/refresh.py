"""Live users' lists updated when their events arrive, off the request path.

A user's first request after new events pays the incremental update of their candidates, the
re-ranking and the explanations. `LiveRefresher` does that work in one background thread as
events arrive, so the request finds it cached and costs what a precomputed one does. Users
are coalesced: a user with several events pending is updated once, from the newest state.
The work is the same CPU, moved (`ModelRuntime(refresh_live=True)`; the server's default).

The thread shares the process's GIL with request handlers and event ingestion, so it keeps to
`max_share` of one core: after an update that took `t` seconds of its CPU it pauses
`t * (1 / max_share - 1)`. Under a burst (a bulk import of events) the backlog waits,
coalesced, instead of slowing ingestion and requests; a user asked for before their turn is
served by the request path, and their queued update then finds the cached list current.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterable

from serendip.errors import ConfigError

__all__ = ["LiveRefresher"]

_log = logging.getLogger("serendip.serving")


class LiveRefresher:
    """Runs `update(user)` in a daemon thread for every user submitted, each pending user
    once. `drain` waits until nothing is pending (tests, benchmarks)."""

    def __init__(
        self,
        update: Callable[[str], object],
        *,
        max_pending: int = 100_000,
        max_share: float = 1.0,
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        if not 0.0 < max_share <= 1.0:
            raise ConfigError(f"max_share must be in (0, 1], got {max_share}")
        self._update = update
        self.max_pending = max_pending
        #: most of one core the updates may take (see the module docstring)
        self.max_share = max_share
        #: called when the queue empties after updates (the server freezes the survivors out
        #: of the cyclic GC's sight, so a later full collection does not stall requests)
        self.on_idle = on_idle
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self.done = 0
        self._thread = threading.Thread(target=self._run, name="serendip-refresh", daemon=True)
        self._thread.start()
        _LIVE.append(self)

    def submit(self, users: Iterable[str]) -> None:
        """Queue these users (beyond `max_pending` new users are dropped: served lazily)."""
        with self._cond:
            for u in users:
                if len(self._pending) < self.max_pending:
                    self._pending[str(u)] = None
            self._cond.notify()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every submitted user is updated; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout=30.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                user = next(iter(self._pending))
                del self._pending[user]
                self._busy = True
            start = time.thread_time()
            try:
                self._update(user)
                self.done += 1
            except Exception:  # a failed update leaves the user to the request path
                _log.exception("updating the live user %r failed", user)
            pause = (time.thread_time() - start) * (1.0 / self.max_share - 1.0)
            if pause > 0:
                with self._cond:  # a stop ends the pause
                    self._cond.wait_for(lambda: self._stopped, pause)
            if self.on_idle is not None and not self._pending:
                self.on_idle()


#: refreshers of this process: stopped at exit (a daemon thread frozen inside native code at
#: interpreter shutdown aborts the process)
_LIVE: list[LiveRefresher] = []


@atexit.register
def _stop_all() -> None:
    for refresher in _LIVE:
        refresher.stop()
