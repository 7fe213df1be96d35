"""Precomputed lists (`serendip.serving.precompute.RankedLists`): one user's candidates read
back densified, the same from memory-mapped files as from the arrays they were saved from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from serendip.serving.precompute import RankedLists


def _lists() -> RankedLists:
    """Two users over sources (a, b): user 0 has items 7 (a rank 1, b rank 2) and 3 (b rank 1,
    a's rank unknown); user 1 has item 5 (a rank 1); one final item each, explained."""
    blob = b'{"text":"x"}{"text":"y"}'
    arrays = {
        "indptr": np.array([0, 2, 3], np.int64),
        "total": np.array([4, 1], np.int64),
        "items": np.array([7, 3, 5], np.int64),
        "scores": np.array([0.9, 0.5, 0.7], np.float32),
        "hit_indptr": np.array([0, 2, 4, 5], np.int64),
        "hit_source": np.array([0, 1, 1, 0, 0], np.int8),
        "hit_score": np.array([2.0, 1.0, 3.0, 0.5, 4.0], np.float32),
        "hit_rank": np.array([1, 2, 1, np.iinfo(np.uint16).max, 1], np.uint16),
        "final_indptr": np.array([0, 1, 2], np.int64),
        "final_items": np.array([7, 5], np.int64),
        "final_scores": np.array([0.9, 0.7], np.float32),
        "expl_offsets": np.array([0, 12, 24], np.int64),
        "expl_blob": np.frombuffer(blob, np.uint8).copy(),
    }
    return RankedLists(arrays, sources=("a", "b"), depth=2, final_k=1, fingerprint="f")


def test_a_user_s_candidates_read_back_densified() -> None:
    got = _lists().get(0)
    assert got is not None and got.cut  # 4 passed the rules, 2 kept
    np.testing.assert_array_equal(got.items, [7, 3])
    np.testing.assert_array_equal(got.source_score, [[2.0, 1.0], [0.5, 3.0]])
    np.testing.assert_array_equal(got.source_rank, [[1.0, 2.0], [np.inf, 1.0]])
    np.testing.assert_array_equal(got.final_items, [7])
    assert json.loads(got.explanations[7]) == {"text": "x"}
    assert _lists().get(2) is None and _lists().get(-1) is None


def test_memory_mapped_lists_read_as_the_arrays_they_were_saved_from(tmp_path: Path) -> None:
    lists = _lists()
    lists.save(tmp_path)
    loaded = RankedLists.load(tmp_path, fingerprint="f")
    assert loaded is not None
    assert isinstance(loaded.a["items"], np.memmap)  # read from the files, not copied
    for u in range(2):
        a, b = lists.get(u), loaded.get(u)
        assert a is not None and b is not None
        for name in ("items", "scores", "source_score", "source_rank", "final_items"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert not isinstance(getattr(b, name), np.memmap)
        assert a.explanations == b.explanations and a.total == b.total
    assert RankedLists.load(tmp_path, fingerprint="other") is None
