"""One place that keeps serving single-threaded inside the numeric libraries."""

from __future__ import annotations

__all__ = ["limit_threads"]


def limit_threads() -> None:
    """Limit the BLAS / OpenMP pools loaded in this process to one thread.

    One request is a handful of small matrix products; fanning each out over every core only
    adds synchronisation and tail latency, worst on a small shared machine, and concurrent
    requests already use the cores. Call it after every model load (a model may load a library
    with its own pool, e.g. LightGBM's OpenMP), never per request: threadpoolctl scans the
    loaded libraries, which costs more than a request.
    """
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - an optional speed-up
        return
    if any(int(lib.get("num_threads", 1)) > 1 for lib in threadpool_info()):
        threadpool_limits(limits=1)
