"""Merge every source's proposals into one `CandidateFrame` (one row per distinct pair)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from serendip.errors import ConfigError
from serendip.pipeline.candidates import CandidateFrame, Proposal

__all__ = ["merge_proposals"]


def merge_proposals(
    per_source: Mapping[str, Sequence[Proposal]],
    n_rows: int,
    quotas: Mapping[str, int],
) -> CandidateFrame:
    """Union of the sources' proposals for a batch of `n_rows` users.

    per_source: source name -> one `Proposal` per row (best first), in column order. quotas: how
    many of each source's best proposals enter (not named: all; 0: none). A pair that entered
    through one source still gets every other source's score and rank beyond its quota: the
    ranker should see all the evidence there is. Rows are sorted by user, then item; score and
    rank are float32 (m, n_sources), NaN where a source did not propose the pair, rank 1-based.

    >>> from serendip.pipeline.candidates import Proposal
    >>> p = Proposal(np.array([5, 3]), np.array([2.0, 1.0], np.float32))
    >>> f = merge_proposals({"a": [p]}, 1, {"a": 1})
    >>> f.item.tolist(), f.rank[:, 0].tolist()
    ([5], [1.0])
    """
    names = tuple(per_source)
    unknown = set(quotas) - set(names)
    if unknown:
        raise ConfigError(f"quotas name unknown sources {sorted(unknown)}; sources: {list(names)}")
    for name, props in per_source.items():
        if len(props) != n_rows:
            raise ConfigError(f"source '{name}' gave {len(props)} proposals for {n_rows} rows")
        if quotas.get(name, 0) < 0:
            raise ConfigError(f"quota of source '{name}' must be non-negative")
    rows_all: list[np.ndarray] = []
    items_all: list[np.ndarray] = []
    scores_all: list[np.ndarray] = []
    ranks_all: list[np.ndarray] = []
    cols_all: list[np.ndarray] = []
    enter: list[np.ndarray] = []
    for col, name in enumerate(names):
        props = per_source[name]
        lens = np.array([len(p.items) for p in props], dtype=np.int64)
        if lens.sum() == 0:
            continue
        items = np.concatenate([np.asarray(p.items, np.int64) for p in props])
        scores = np.concatenate([np.asarray(p.scores, np.float32) for p in props])
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lens)
        rank = np.arange(len(items)) - np.repeat(np.cumsum(lens) - lens, lens) + 1
        quota = quotas.get(name)
        rows_all.append(rows)
        items_all.append(items)
        scores_all.append(scores)
        ranks_all.append(rank.astype(np.float32))
        cols_all.append(np.full(len(items), col, np.int64))
        enter.append(rank <= quota if quota is not None else np.ones(len(items), bool))
    n_src = len(names)
    if not rows_all:
        z = np.zeros(0, np.int64)
        e = np.zeros((0, n_src), np.float32)
        return CandidateFrame(z, z, names, e, e.copy())
    rows = np.concatenate(rows_all)
    items = np.concatenate(items_all)
    n_items = int(items.max()) + 1
    key = rows * n_items + items
    entered = np.unique(key[np.concatenate(enter)])
    pos = np.searchsorted(entered, key)
    pos_c = np.minimum(pos, max(len(entered) - 1, 0))
    hit = (len(entered) > 0) & (entered[pos_c] == key) if len(entered) else np.zeros(len(key), bool)
    score = np.full((len(entered), n_src), np.nan, np.float32)
    rank = np.full((len(entered), n_src), np.nan, np.float32)
    cols = np.concatenate(cols_all)
    score[pos_c[hit], cols[hit]] = np.concatenate(scores_all)[hit]
    rank[pos_c[hit], cols[hit]] = np.concatenate(ranks_all)[hit]
    return CandidateFrame(
        row=(entered // n_items).astype(np.int64),
        item=(entered % n_items).astype(np.int64),
        sources=names,
        score=score,
        rank=rank,
    )
