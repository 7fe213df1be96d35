"""The server follows the store: a version activated by another process is served without a
restart, and the monitor gauges stay fresh.

A daemon thread polls `store.models.active()` every `app.state.model_watch_s` seconds (5 by
default; 0 turns the watcher off). When the store's active version differs from the one the
runtime serves, it loads that version through `routes.models.swap_in` (validated, atomic; a
version that fails to load is marked failed, logged and not retried, and the old one keeps
serving). It holds the app's swap lock while it compares and swaps, so it never races the
activate and rollback routes, and it waits while a background load or the first start runs
(those activate versions themselves). This is how `serendip retrain`, `serendip promote` and
`serendip rollback`, which only write the store, reach a running server.

Every `app.state.monitor_refresh_s` seconds (300 by default; 0: never) it also computes the
live monitors (`serendip.operations.monitors`) into the `/metrics` gauges.
"""

from __future__ import annotations

import logging
import threading
import time

from fastapi import FastAPI

from serendip.errors import SerendipError

__all__ = ["MODEL_WATCH_S", "MONITOR_REFRESH_S", "busy", "start_watcher", "watch_once"]

log = logging.getLogger("serendip.service")

#: Seconds between two looks at the store's active version.
MODEL_WATCH_S = 5.0
#: Seconds between two computations of the monitor gauges.
MONITOR_REFRESH_S = 300.0


def busy(app: FastAPI) -> bool:
    """A background load or the first start is running: they activate versions themselves."""
    background = getattr(app.state, "background", None)
    if isinstance(background, threading.Thread) and background.is_alive():
        return True
    return app.state.bootstrap.current is not None


def watch_once(app: FastAPI) -> str | None:
    """One look: swap in the store's active version if the runtime serves another; the version
    swapped in, else None."""
    store, runtime = app.state.store, app.state.runtime
    if store is None or runtime is None or busy(app):
        return None
    from serendip.service.routes.models import swap_in

    failed: set[str] = app.state.watch_failed
    lock: threading.Lock = app.state.swap_lock
    if not lock.acquire(timeout=1.0):
        return None  # an activation is under way: look again next time
    try:
        active = store.models.active()
        if active is None:
            return None
        if active.version == runtime.active_version:
            if not runtime.build_in_background:
                runtime.adopt_saved_lists()  # the leader's, once saved
            metrics = app.state.metrics
            if metrics.described_version != active.version:  # loaded at the start: name, age
                metrics.set_model_version(
                    active.version, model=active.name, registered_at=active.created_at
                )
            return None
        if active.version in failed:
            return None
        log.info(
            "model version %s (%s) was activated in the store; swapping it in",
            active.version,
            active.name,
        )
        if runtime.active_version is None:  # this server's first model (another made it)
            from serendip.service.app import warm_start

            runtime.reset_live_state()  # the store holds all of it: replayed, none twice
            warm_start(store, runtime, active)
        try:
            swap_in(app.state, store, runtime, app.state.metrics, active)
        except SerendipError:
            failed.add(active.version)  # logged by swap_in; not retried
            return None
        return str(active.version)
    finally:
        lock.release()


def _refresh_monitors(app: FastAPI) -> None:
    from serendip.operations.config import load_monitor_config
    from serendip.operations.monitors import run_monitors

    report = run_monitors(app.state.store, load_monitor_config(app.state.settings.monitors_file))
    app.state.metrics.observe_monitors(report.results)


def start_watcher(app: FastAPI) -> threading.Thread | None:
    """Start the watcher thread (None when `app.state.model_watch_s` is 0); it ends when the
    app shuts down."""
    every = float(getattr(app.state, "model_watch_s", MODEL_WATCH_S))
    monitors_every = float(getattr(app.state, "monitor_refresh_s", MONITOR_REFRESH_S))
    if every <= 0:
        return None
    app.state.watch_failed = set()
    stop: threading.Event = app.state.shutting_down

    def run() -> None:
        next_monitors = time.monotonic() + monitors_every
        while not stop.wait(every):
            try:
                watch_once(app)
            except Exception:  # the store away for a moment: try again next time
                log.exception("model watcher: looking at the active version failed")
            if monitors_every > 0 and time.monotonic() >= next_monitors:
                next_monitors = time.monotonic() + monitors_every
                try:
                    _refresh_monitors(app)
                except Exception:
                    log.exception("model watcher: computing the monitors failed")

    thread = threading.Thread(target=run, name="serendip-watcher", daemon=True)
    thread.start()
    return thread
