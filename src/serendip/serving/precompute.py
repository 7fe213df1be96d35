"""Precomputed ranked candidates for every known user: the serving fast path at platform scale.

A pipeline request has an expensive half (context, every candidate source, merge, features,
the ranker) and a cheap half (filters, re-ranking, backfill, explanations). The expensive half
depends only on the model and the user's state as the model saw it, so for users with no live
state since the fit it is computed ahead, in batch (far cheaper per user than single calls),
and a request only finishes the list. `RankedLists` holds, per user index, the `depth` best
candidates passing the static rules (item indices, ranker scores, the proposing sources' name,
score and rank) in flat CSR-like arrays, built at fit time and saved next to the artifact
(`serving-lists/`, memory-mapped on load); a model activated without them builds them in the
background. A cut list (`total` > depth) is exact only while a request leaves at least the
re-ranking pool of allowed candidates in it; the runtime checks that and otherwise computes
the user in full (filters that remove many candidates: categories, authors, exclude lists).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serendip.errors import SerendipError
from serendip.models.base import ModelConfig, Recommender
from serendip.serving.contract import LiveUser, RankedCandidates, ServingModel

__all__ = ["LISTS_DIR", "RankedLists", "UserCandidates", "build_ranked_lists"]

log = logging.getLogger("serendip.serving")

#: Subdirectory of a model artifact that holds its precomputed lists (derived data: deleting it
#: only makes the next load rebuild it).
LISTS_DIR = "serving-lists"
_FORMAT = 1
_ARRAYS = (
    "indptr",
    "total",
    "items",
    "scores",
    "hit_indptr",
    "hit_source",
    "hit_score",
    "hit_rank",
    "final_indptr",
    "final_items",
    "final_scores",
    "expl_offsets",
    "expl_blob",
)
_NO_RANK = np.iinfo(np.uint16).max  # ranks are 1-based and capped below this (quota <= 5000)


@dataclass(frozen=True, slots=True, eq=False)
class UserCandidates:
    """One user's precomputed candidates, densified for the request path: item indices, ranker
    scores (non-increasing), per-source scores and ranks (n x len(sources), NaN = not proposed),
    and whether the list was cut at the depth (`total` candidates passed the rules)."""

    items: np.ndarray
    scores: np.ndarray
    source_score: np.ndarray
    source_rank: np.ndarray
    total: int
    #: the final list of an unfiltered request for `final_k` items (items, displayed scores)
    #: and each item's explanation (`Explanation.to_dict()` as JSON), computed with the lists;
    #: kept encoded so that no long-lived objects pile up for the garbage collector to walk
    final_items: np.ndarray
    final_scores: np.ndarray
    explanations: dict[int, bytes]

    @property
    def cut(self) -> bool:
        return self.total > len(self.items)

    def ranked(self, sources: tuple[str, ...]) -> RankedCandidates:
        """As the serving contract's ranked candidates (columns: `sources`)."""
        return RankedCandidates(
            self.items, self.scores, sources, self.source_score, self.source_rank, self.total
        )


class RankedLists:
    """Per-user ranked candidates of one fitted pipeline, for users 0..n_users-1 of its
    vocabulary. Read-only once built; `get` is O(candidates of that user)."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        *,
        sources: Sequence[str],
        depth: int,
        final_k: int,
        fingerprint: str,
    ) -> None:
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise SerendipError(f"precomputed lists lack arrays {missing}")
        self.a = arrays
        #: the same arrays as plain ndarrays: a memory-mapped one's slicing goes through
        #: `np.memmap.__getitem__` in Python, a dozen times per `get`
        self._plain = {
            k: v.view(np.ndarray) if isinstance(v, np.memmap) else v for k, v in arrays.items()
        }
        self.sources = tuple(sources)
        self.depth = depth
        self.final_k = final_k
        self.fingerprint = fingerprint
        self.n_users = len(arrays["indptr"]) - 1

    def __len__(self) -> int:
        return self.n_users

    @property
    def nbytes(self) -> int:
        return int(sum(np.asarray(v).nbytes for v in self.a.values()))

    def get(self, user_idx: int) -> UserCandidates | None:
        """The user's candidates, or None for an index outside the lists."""
        if not 0 <= user_idx < self.n_users:
            return None
        a = self._plain
        s, e = int(a["indptr"][user_idx]), int(a["indptr"][user_idx + 1])
        n, n_src = e - s, len(self.sources)
        score = np.full((n, n_src), np.nan, np.float32)
        rank = np.full((n, n_src), np.nan, np.float32)
        hs, he = int(a["hit_indptr"][s]), int(a["hit_indptr"][e])
        if he > hs:
            # the candidate (row within the user) of every hit, from the per-candidate counts
            rows = np.repeat(np.arange(n), np.diff(np.asarray(a["hit_indptr"][s : e + 1])))
            src = np.asarray(a["hit_source"][hs:he], np.int64)
            score[rows, src] = a["hit_score"][hs:he]
            r = np.asarray(a["hit_rank"][hs:he], np.float32)
            r[np.asarray(a["hit_rank"][hs:he]) == _NO_RANK] = np.inf
            rank[rows, src] = r
        fs, fe = int(a["final_indptr"][user_idx]), int(a["final_indptr"][user_idx + 1])
        final_items = np.asarray(a["final_items"][fs:fe], np.int64)
        offsets = np.asarray(a["expl_offsets"][fs : fe + 1])
        blob = a["expl_blob"]
        raw = bytes(blob[int(offsets[0]) : int(offsets[-1])]) if len(offsets) else b""
        starts = (offsets - offsets[0]).tolist() if len(offsets) else []
        explanations = {
            int(i): raw[starts[j] : starts[j + 1]] for j, i in enumerate(final_items.tolist())
        }
        return UserCandidates(
            np.asarray(a["items"][s:e], np.int64),
            np.asarray(a["scores"][s:e], np.float32),
            score,
            rank,
            int(a["total"][user_idx]),
            final_items,
            np.asarray(a["final_scores"][fs:fe], np.float32),
            explanations,
        )

    # -------------------------------------------------------------- persistence
    def save(self, directory: Path | str) -> Path:
        """Write into `directory/serving-lists/` (atomically: a temporary folder, renamed)."""
        out = Path(directory) / LISTS_DIR
        tmp = out.with_name(f"{LISTS_DIR}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", np.asarray(self.a[name]))
        meta = {
            "format": _FORMAT,
            "sources": list(self.sources),
            "depth": self.depth,
            "final_k": self.final_k,
            "fingerprint": self.fingerprint,
            "n_users": self.n_users,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out.exists():
            import shutil

            shutil.rmtree(out)
        tmp.rename(out)
        return out

    @classmethod
    def load(cls, directory: Path | str, *, fingerprint: str) -> RankedLists | None:
        """The lists saved under `directory`, memory-mapped; None when there are none, or they
        belong to another fit (`fingerprint` differs) or an older format."""
        root = Path(directory) / LISTS_DIR
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != _FORMAT or meta.get("fingerprint") != fingerprint:
                log.warning("precomputed lists in %s are stale; ignoring them", root)
                return None
            arrays = {name: np.load(root / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        except (OSError, ValueError) as exc:
            log.warning("precomputed lists in %s are unreadable (%s); ignoring them", root, exc)
            return None
        return cls(
            arrays,
            sources=meta["sources"],
            depth=int(meta["depth"]),
            final_k=int(meta["final_k"]),
            fingerprint=fingerprint,
        )


def fingerprint(directory: Path | str) -> str:
    """What ties lists to one saved fit: a digest of the artifact's manifest and ranker (a
    refit or another model in the same place reads as different)."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("manifest.json", "ranker.txt"):
        path = Path(directory) / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:32]


def _rank_part(
    serving: ServingModel, users: np.ndarray, depth: int, final_k: int, batch: int
) -> dict[str, np.ndarray]:
    """The lists of `users` (sorted user indices) as flat arrays with per-user counts."""
    sources = serving.sources
    stateless = serving.stateless_rerank
    vocab = serving.model.users_
    out: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "count",
            "total",
            "items",
            "scores",
            "hit_count",
            "hit_source",
            "hit_score",
            "hit_rank",
            "final_count",
            "final_items",
            "final_scores",
            "expl_len",
        )
    }
    blobs: list[bytes] = []
    for b in range(0, len(users), batch):
        idx = users[b : b + batch]
        contexts = serving.contexts([LiveUser(vocab.id(int(u))) for u in idx])
        ranked = serving.candidates(contexts, depth=depth)
        for ctx, rc in zip(contexts, ranked, strict=True):
            out["count"].append(np.array([len(rc.items)]))
            out["total"].append(np.array([rc.total]))
            out["items"].append(rc.items)
            out["scores"].append(rc.scores)
            proposed = ~np.isnan(rc.source_rank)
            out["hit_count"].append(proposed.sum(axis=1))
            rows, cols = np.nonzero(proposed)
            out["hit_source"].append(cols)
            out["hit_score"].append(rc.source_score[rows, cols])
            out["hit_rank"].append(np.minimum(rc.source_rank[rows, cols], _NO_RANK))
            # the unfiltered request's final list and its explanations: most requests are
            # exactly this one, and explaining is most of a request's remaining cost
            if stateless:
                final, shown = serving.final_list(ctx, rc, final_k, None)
            else:  # the answer depends on what was served before: computed per request
                final, shown = np.zeros(0, np.int64), np.zeros(0, np.float32)
            pos = {int(i): j for j, i in enumerate(rc.items.tolist())}
            nan = np.full(len(sources), np.nan, np.float32)
            for i, sc in zip(final.tolist(), shown.tolist(), strict=True):
                j = pos.get(i, -1)
                expl = serving.explain(
                    ctx,
                    i,
                    rc.source_score[j] if j >= 0 else nan,
                    rc.source_rank[j] if j >= 0 else nan,
                    sc,
                )
                blobs.append(json.dumps(expl.to_dict(), separators=(",", ":")).encode())
            out["final_count"].append(np.array([len(final)]))
            out["final_items"].append(final)
            out["final_scores"].append(shown)
            out["expl_len"].append(
                np.array([len(x) for x in blobs[-len(final) :]] if len(final) else [])
            )
    dtypes = {
        "count": np.int64,
        "total": np.int32,
        "items": np.int32,
        "scores": np.float32,
        "hit_count": np.int64,
        "hit_source": np.uint8,
        "hit_score": np.float32,
        "hit_rank": np.uint16,
        "final_count": np.int64,
        "final_items": np.int32,
        "final_scores": np.float32,
        "expl_len": np.int64,
    }
    arrays = {
        k: (np.concatenate(v) if v else np.zeros(0)).astype(dtypes[k]) for k, v in out.items()
    }
    arrays["expl_blob"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    return arrays


def _assemble(
    n_users: int, users: np.ndarray, parts: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-part arrays (for consecutive chunks of the sorted `users`) -> the lists' arrays."""

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts]) if parts else np.zeros(0)

    counts = np.zeros(n_users, np.int64)
    counts[users] = cat("count")
    total = np.zeros(n_users, np.int32)
    total[users] = cat("total")
    final_counts = np.zeros(n_users, np.int64)
    final_counts[users] = cat("final_count")

    def indptr(c: np.ndarray) -> np.ndarray:
        out = np.zeros(len(c) + 1, np.int64)
        np.cumsum(c, out=out[1:])
        return out

    expl_len = cat("expl_len").astype(np.int64)
    return {
        "indptr": indptr(counts),
        "total": total,
        "items": cat("items").astype(np.int32),
        "scores": cat("scores").astype(np.float32),
        "hit_indptr": indptr(cat("hit_count").astype(np.int64)),
        "hit_source": cat("hit_source").astype(np.uint8),
        "hit_score": cat("hit_score").astype(np.float32),
        "hit_rank": cat("hit_rank").astype(np.uint16),
        "final_indptr": indptr(final_counts),
        "final_items": cat("final_items").astype(np.int32),
        "final_scores": cat("final_scores").astype(np.float32),
        "expl_offsets": indptr(expl_len),
        "expl_blob": cat("expl_blob").astype(np.uint8),
    }


#: Builds the serving adapter of a loaded model (picklable: a module-level function).
Adapter = Callable[[Recommender[ModelConfig]], ServingModel]
_WORKER_MODEL: dict[str, ServingModel] = {}


def _worker_part(
    directory: str, adapter: Adapter, users: np.ndarray, depth: int, final_k: int, batch: int
) -> dict[str, np.ndarray]:
    """In a worker process: load the artifact once, rank a chunk of users."""
    serving = _WORKER_MODEL.get(directory)
    if serving is None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        serving = _WORKER_MODEL[directory] = adapter(Recommender.load(directory))
    return _rank_part(serving, users, depth, final_k, batch)


#: Users from which batch work over every user is shared among processes by default.
AUTO_WORKERS_FROM = 20_000
#: The most processes the default takes.
AUTO_WORKERS_MAX = 4


def auto_workers(n_users: int, requested: int = 0) -> int:
    """Processes for batch work over `n_users` users: `requested` when it is positive, else
    one per available CPU core (at most `AUTO_WORKERS_MAX`) from `AUTO_WORKERS_FROM` users on,
    and 1 below (each process loads the model: on a small platform that costs more than it
    saves)."""
    if requested > 0:
        return requested
    if n_users < AUTO_WORKERS_FROM:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, AUTO_WORKERS_MAX))


def build_ranked_lists(
    serving: ServingModel,
    *,
    fingerprint: str = "",
    depth: int | None = None,
    final_k: int = 10,
    batch: int = 1_000,
    users: np.ndarray | None = None,
    workers: int = 1,
    directory: Path | str | None = None,
    adapter: Adapter | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
) -> RankedLists | None:
    """Rank every known user's candidates in batches of `batch` users
    (`ServingModel.candidates`), keeping the `depth` best (default: the re-ranking pool + 20,
    so a few live deletions or exclusions never send a request to the full path), plus the
    final list of an unfiltered request for `final_k` items with its explanations. `users`: the
    user indices to build (default all; the rest get empty lists). `workers` > 1 (with
    `directory`, the saved artifact, and `adapter`, which serves it): that many processes share
    the users, this one and `workers - 1` that load the artifact; 0 = `auto_workers`.
    `fingerprint`: of the artifact the model was saved as (`fingerprint(directory)`), so a
    later load can tell the lists belong to it. None when
    `should_stop` turned true part-way (a swap or a shutdown)."""
    n_users = len(serving.model.users_)
    depth = int(depth if depth is not None else serving.rerank_pool + 20)
    todo = np.arange(n_users) if users is None else np.unique(np.asarray(users, np.int64))
    start = time.perf_counter()
    chunks = [todo[b : b + batch] for b in range(0, len(todo), batch)]
    parts: list[dict[str, np.ndarray]] = []
    workers = auto_workers(len(todo), workers)
    if workers > 1 and directory is not None and adapter is not None and len(chunks) > 1:
        built = _shared_build(
            serving, chunks, workers, str(directory), adapter, depth, final_k, batch,
            should_stop, progress,
        )  # fmt: skip
        if built is None:
            return None
        parts = built
    else:
        for j, c in enumerate(chunks):
            if should_stop():
                return None
            parts.append(_rank_part(serving, c, depth, final_k, batch))
            if progress is not None:
                progress(sum(len(x) for x in chunks[: j + 1]), len(todo))
    arrays = _assemble(n_users, todo, parts)
    log.info(
        "precomputed ranked candidates for %d users (depth %d) in %.1f s",
        len(todo),
        depth,
        time.perf_counter() - start,
    )
    return RankedLists(
        arrays,
        sources=serving.sources,
        depth=depth,
        final_k=final_k,
        fingerprint=fingerprint,
    )


def _shared_build(
    serving: ServingModel,
    chunks: list[np.ndarray],
    workers: int,
    directory: str,
    adapter: Adapter,
    depth: int,
    final_k: int,
    batch: int,
    should_stop: Callable[[], bool],
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, np.ndarray]] | None:
    """The chunks' parts (in chunk order) from `workers` processes: this one, with the model it
    already holds, and `workers - 1` spawned ones that load the artifact. The caller working
    too spares one process's copy of the model's private state (gigabytes at the platform
    preset) and one load; the parts are the same whichever process ranks a chunk."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    from threadpoolctl import threadpool_limits

    total = sum(len(c) for c in chunks)
    results: dict[int, dict[str, np.ndarray]] = {}
    flight: dict[Future[dict[str, np.ndarray]], int] = {}
    queued = 0  # chunks handed out so far, in order
    ctx = multiprocessing.get_context("spawn")  # no fork: the server has threads
    with ProcessPoolExecutor(workers - 1, mp_context=ctx) as pool, threadpool_limits(1):
        while queued < len(chunks) or flight:
            if should_stop():
                for f in flight:
                    f.cancel()
                return None
            while len(flight) < 2 * (workers - 1) and queued < len(chunks):
                fut = pool.submit(
                    _worker_part, directory, adapter, chunks[queued], depth, final_k, batch
                )
                flight[fut] = queued
                queued += 1
            if queued < len(chunks):  # this process ranks the next chunk meanwhile
                results[queued] = _rank_part(serving, chunks[queued], depth, final_k, batch)
                queued += 1
            else:
                wait(list(flight), return_when=FIRST_COMPLETED)
            for fut in [f for f in flight if f.done()]:
                results[flight.pop(fut)] = fut.result()
            if progress is not None:
                progress(sum(len(chunks[j]) for j in results), total)
    return [results[j] for j in range(len(chunks))]


class ListsHolder:
    """The lists of one snapshot: absent, being built in the background, or ready."""

    def __init__(self) -> None:
        self.lists: RankedLists | None = None
        self.state = "absent"  # absent | building | ready | failed
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()
