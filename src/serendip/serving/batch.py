"""Batch recommendations for many users from a saved model, shared among processes.

What `serendip recommend` runs: the users are cut into chunks, and each of `workers` processes
(spawned, each loading the saved artifact once; its large arrays are memory-mapped, so the
processes share one copy in the page cache) recommends its chunks. One process below
`AUTO_WORKERS_FROM` users (see `auto_workers`). The result is the same whatever the number of
processes: a chunk's lists do not depend on the other chunks.

An artifact a server's retrain saved carries its precomputed ranked candidates
(`serving-lists/`, see `serendip.serving.precompute`). Given the model's serving adapter, the
known users' lists are then finished from them -- filters, re-ranking and backfill only, the
candidate sources and the ranker having run at the retrain -- which gives the lists a full
recompute gives (the candidates cover the re-ranking pool, and the rest of the list is the
backfill). Users without such candidates, and every user of a model whose final list depends
on what was served before, go through `Recommender.recommend`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from serendip.models.base import ModelConfig, Recommender
from serendip.serving.contract import LiveUser, ServingModel
from serendip.serving.precompute import Adapter, RankedLists, auto_workers, fingerprint

__all__ = ["recommend_batch"]

_CHUNK = 4096


@dataclass(frozen=True, slots=True, eq=False)
class _Loaded:
    """A saved model, with its serving adapter and precomputed lists where both apply."""

    model: Recommender[ModelConfig]
    serving: ServingModel | None
    lists: RankedLists | None


_LOADED: _Loaded | None = None


def _open(model_dir: Path, adapter: Adapter | None) -> _Loaded:
    model = Recommender.load(model_dir)
    if adapter is None:
        return _Loaded(model, None, None)
    serving = adapter(model)
    lists = None
    if serving.caches_candidates and serving.stateless_rerank:
        lists = RankedLists.load(model_dir, fingerprint=fingerprint(model_dir))
    return _Loaded(model, serving, lists)


def _load(model_dir: str, adapter: Adapter | None) -> None:
    global _LOADED
    _LOADED = _open(Path(model_dir), adapter)


def _chunk(ids: Sequence[str], k: int) -> pd.DataFrame:
    assert _LOADED is not None, "worker not initialised"
    return _recommend(_LOADED, list(ids), k)


def _recommend(loaded: _Loaded, ids: list[str], k: int) -> pd.DataFrame:
    """The lists of `ids` (in order) as a user,item,rank,score frame."""
    model, serving, lists = loaded.model, loaded.serving, loaded.lists
    if serving is None or lists is None or not ids:
        return model.recommend(ids, k).to_frame()
    idx = model.users_.indices(np.asarray(ids, dtype=object))
    pool = serving.rerank_pool
    found: list[tuple[np.ndarray, np.ndarray] | None] = []
    rest: list[int] = []
    for j, (user, u) in enumerate(zip(ids, idx.tolist(), strict=True)):
        pre = lists.get(u) if u >= 0 else None
        if pre is None or (pre.cut and len(pre.items) < pool):
            found.append(None)
            rest.append(j)
        elif k <= len(pre.final_items):  # the precomputed final list is greedy: its first k
            found.append((pre.final_items[:k], pre.final_scores[:k]))
        else:
            ctx = serving.contexts([LiveUser(user)])[0]
            found.append(serving.final_list(ctx, pre.ranked(lists.sources), k, None))
    if rest:
        full = model.recommend([ids[j] for j in rest], k)
        for r, j in enumerate(rest):
            keep = full.items[r] >= 0
            found[j] = (full.items[r][keep], full.scores[r][keep])
    lists_of = [x for x in found if x is not None]
    sizes = np.array([len(items) for items, _ in lists_of], np.int64)
    items = np.concatenate([np.asarray(i, np.int64) for i, _ in lists_of])
    scores = np.concatenate([np.asarray(s, np.float32) for _, s in lists_of])
    return pd.DataFrame(
        {
            "user": np.repeat(np.asarray(ids, dtype=object), sizes),
            "item": model.items_.lookup(items),
            "rank": np.concatenate([np.arange(1, n + 1) for n in sizes]).astype(np.int64),
            "score": scores.astype(np.float64),
        }
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["user", "item", "rank", "score"])


def recommend_batch(
    model_dir: Path,
    users: Sequence[str] | None,
    k: int,
    *,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    adapter: Adapter | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """(user,item,rank,score frame, users asked, users unknown to the model) for `users` (None:
    every user the model was fitted on). `workers`: processes (0 = `auto_workers`).
    `adapter`: the model's serving adapter, to finish lists from the artifact's precomputed
    candidates where it has them (the module docstring)."""
    loaded = _open(model_dir, adapter)
    model = loaded.model
    ids = [str(u) for u in model.users_.ids] if users is None else [str(u) for u in users]
    unknown = int((model.users_.indices(np.asarray(ids, dtype=object)) < 0).sum()) if ids else 0
    chunks = [ids[s : s + _CHUNK] for s in range(0, len(ids), _CHUNK)]
    n = auto_workers(len(ids), workers)
    frames: list[pd.DataFrame] = []
    done = 0
    if n > 1 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        del model, loaded  # the workers load their own
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            n, mp_context=ctx, initializer=_load, initargs=(str(model_dir), adapter)
        ) as pool:
            for chunk, frame in zip(
                chunks, pool.map(_chunk, chunks, [k] * len(chunks)), strict=True
            ):
                frames.append(frame)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(ids))
    else:
        for chunk in chunks:
            frames.append(_recommend(loaded, chunk, k))
            done += len(chunk)
            if progress is not None:
                progress(done, len(ids))
    frame = pd.concat(frames, ignore_index=True) if frames else _empty()
    return frame, len(ids), unknown
