"""What a model costs: fit time, peak memory, size on disk, recommendation latency.

Each measure says what it is (`COST_NOTES`), because "memory" and "latency" mean different
things in different tools:

- fit_seconds: wall time of `fit` (this process; includes the machine's other load).
- peak_memory_mb: the largest resident set size (RSS) of this process sampled every 10 ms by
  a thread during `fit`, minus the RSS just before it (MiB), after a garbage collection and
  glibc's `malloc_trim` (so memory freed earlier, e.g. by tuning trials, is returned to the
  OS rather than silently reused by the fit). It counts memory the fit touched and still held
  at a sample, native libraries included (implicit, torch, LightGBM); it is a lower bound.
- model_size_mb: bytes of the artifact `model.save` writes (sum of file sizes, MiB).
- recommend_batch_ms_per_user: one `recommend` call for all test users, divided by their count.
- recommend_single_p50_ms / p99_ms: `recommend` for one user at a time over a seeded sample.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "COST_NOTES",
    "PEAK_MEMORY_NOTE",
    "FitCost",
    "LatencyCost",
    "directory_size_mb",
    "measure_fit",
    "measure_latency",
    "model_size_mb",
]

T = TypeVar("T")
_MB = float(1 << 20)

#: What peak_memory_mb measures (stored in every result row beside it).
PEAK_MEMORY_NOTE = (
    "max process RSS sampled every 10 ms during fit minus RSS before fit, after garbage "
    "collection and malloc_trim (MiB; a lower bound: allocations shorter than 10 ms can be missed)"
)

#: What each cost field measures (stored in results.json's study section).
COST_NOTES: dict[str, str] = {
    "fit_seconds": "wall seconds of fit on the full train split",
    "peak_memory_mb": PEAK_MEMORY_NOTE,
    "model_size_mb": "total size of the files model.save writes (MiB)",
    "recommend_batch_ms_per_user": "one recommend call for all test users / number of users (ms)",
    "recommend_single_p50_ms": "median ms of recommend for one user at a time (seeded sample)",
    "recommend_single_p99_ms": "99th percentile ms of recommend for one user at a time",
}


@dataclass(frozen=True, slots=True)
class FitCost:
    seconds: float
    peak_memory_mb: float
    samples: int


@dataclass(frozen=True, slots=True)
class LatencyCost:
    batch_ms_per_user: float
    single_p50_ms: float
    single_p99_ms: float
    n_batch_users: int
    n_single_users: int


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _release_free_memory() -> None:
    """Collect garbage and hand free heap pages back to the OS (glibc `malloc_trim`), so that
    memory freed before a fit (e.g. by tuning trials) is not silently reused by it and missed
    by the RSS measure. A no-op where glibc is absent."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_fit(fit: Callable[[], T], *, interval_s: float = 0.01) -> tuple[T, FitCost]:
    """Run `fit()` and measure its wall time and peak RSS growth (see the module docstring).

    A sampler thread polls the RSS while `fit` runs; the peak also includes one sample taken
    right after `fit` returns, so a fit shorter than the interval is still measured.
    """
    _release_free_memory()
    before = _rss()
    peak = [before]
    count = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = _rss()
            count[0] += 1
            if rss > peak[0]:
                peak[0] = rss
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, name="serendip-rss-sampler", daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        result = fit()
    finally:
        seconds = time.perf_counter() - start
        stop.set()
        thread.join()
    peak[0] = max(peak[0], _rss())
    return result, FitCost(seconds, max(peak[0] - before, 0) / _MB, count[0] + 1)


def measure_latency(
    recommend: Callable[..., Any],
    users: Sequence[str] | np.ndarray,
    k: int,
    *,
    context: Mapping[str, Sequence[str]] | None = None,
    sample: int = 100,
    seed: int = 0,
) -> tuple[Any, LatencyCost]:
    """Batch and one-at-a-time latency of `recommend(users, k[, context=...])`.

    Returns the batch output (the lists the study evaluates) and the timings. The single-user
    sample is `sample` users drawn without replacement by `seed` (all when fewer).
    """
    users = np.asarray(list(users), dtype=object)
    kwargs = {"context": context} if context else {}
    start = time.perf_counter()
    recs = recommend(users, k, **kwargs)
    batch_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(users), size=min(sample, len(users)), replace=False)
    times: list[float] = []
    for i in np.sort(chosen):
        u = str(users[i])
        one = {"context": {u: context[u]}} if context and u in context else {}
        t0 = time.perf_counter()
        recommend([u], k, **one)
        times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.asarray(times) if times else np.zeros(1)
    return recs, LatencyCost(
        batch_ms_per_user=1000.0 * batch_s / max(len(users), 1),
        single_p50_ms=float(np.percentile(arr, 50)),
        single_p99_ms=float(np.percentile(arr, 99)),
        n_batch_users=len(users),
        n_single_users=len(times),
    )


def directory_size_mb(path: Path) -> float:
    """Sum of the sizes of every file under `path` (MiB)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / _MB


def model_size_mb(save: Callable[[Path], Any]) -> float:
    """Size of what `save(directory)` writes, in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="serendip-size-") as tmp:
        target = Path(tmp) / "model"
        save(target)
        return directory_size_mb(Path(tmp))
