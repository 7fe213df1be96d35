"""Batch recommendations for many users from a saved model, shared among processes.

What `serendip recommend` runs: the users are cut into chunks, and each of `workers` processes
(spawned, each loading the saved artifact once; its large arrays are memory-mapped, so the
processes share one copy in the page cache) recommends its chunks. One process below
`AUTO_WORKERS_FROM` users (see `auto_workers`). The result is the same whatever the number of
processes: a chunk's lists do not depend on the other chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from serendip.models.base import ModelConfig, Recommender
from serendip.serving.precompute import auto_workers

__all__ = ["recommend_batch"]

_CHUNK = 4096
_MODEL: Recommender[ModelConfig] | None = None


def _load(model_dir: str) -> None:
    global _MODEL
    _MODEL = Recommender.load(Path(model_dir))


def _chunk(ids: Sequence[str], k: int) -> pd.DataFrame:
    assert _MODEL is not None, "worker not initialised"
    return _MODEL.recommend(list(ids), k).to_frame()


def recommend_batch(
    model_dir: Path,
    users: Sequence[str] | None,
    k: int,
    *,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """(user,item,rank,score frame, users asked, users unknown to the model) for `users` (None:
    every user the model was fitted on). `workers`: processes (0 = `auto_workers`)."""
    import numpy as np

    model = Recommender.load(model_dir)
    ids = [str(u) for u in model.users_.ids] if users is None else [str(u) for u in users]
    unknown = int((model.users_.indices(np.asarray(ids, dtype=object)) < 0).sum()) if ids else 0
    chunks = [ids[s : s + _CHUNK] for s in range(0, len(ids), _CHUNK)]
    n = auto_workers(len(ids), workers)
    frames: list[pd.DataFrame] = []
    done = 0
    if n > 1 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        del model  # the workers load their own
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            n, mp_context=ctx, initializer=_load, initargs=(str(model_dir),)
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
            frames.append(model.recommend(chunk, k).to_frame())
            done += len(chunk)
            if progress is not None:
                progress(done, len(ids))
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["user", "item", "rank", "score"])
    )
    return frame, len(ids), unknown
