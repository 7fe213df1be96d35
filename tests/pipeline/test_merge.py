from __future__ import annotations

import numpy as np
import pytest

from serendip.errors import ConfigError
from serendip.pipeline.candidates import Proposal
from serendip.pipeline.merge import merge_proposals


def prop(items: list[int], scores: list[float] | None = None) -> Proposal:
    s = scores if scores is not None else [float(len(items) - j) for j in range(len(items))]
    return Proposal(np.array(items, np.int64), np.array(s, np.float32))


def test_quotas_dedupe_and_grouping() -> None:
    per_source = {
        "a": [prop([7, 3, 9]), prop([1, 2])],
        "b": [prop([3, 5]), prop([])],
    }
    frame = merge_proposals(per_source, 2, {"a": 2, "b": 1})
    assert frame.sources == ("a", "b")
    # user 0: a's best two (7, 3) and b's best (3): 3 appears once; 9 and 5 are beyond quota
    pairs = list(zip(frame.row.tolist(), frame.item.tolist(), strict=True))
    assert pairs == [(0, 3), (0, 7), (1, 1), (1, 2)]
    assert frame.group_sizes(2).tolist() == [2, 2]
    assert np.all(np.diff(frame.row) >= 0)
    # item 3: rank 2 in a (score 2), rank 1 in b (score 2)
    i3 = pairs.index((0, 3))
    assert frame.rank[i3].tolist() == [2.0, 1.0]
    assert frame.score[i3].tolist() == [2.0, 2.0]
    i7 = pairs.index((0, 7))
    assert frame.rank[i7, 0] == 1.0 and np.isnan(frame.rank[i7, 1])
    assert np.isnan(frame.score[i7, 1])
    assert frame.score.dtype == np.float32 and frame.rank.dtype == np.float32


def test_scores_beyond_quota_still_fill_entered_pairs() -> None:
    frame = merge_proposals({"a": [prop([4])], "b": [prop([8, 6, 4])]}, 1, {"b": 1})
    assert frame.item.tolist() == [4, 8]  # a has no quota: all of it enters
    assert frame.rank[0].tolist() == [1.0, 3.0]  # b ranked 4 third: known, though not entered


def test_zero_quota_and_empty_rows() -> None:
    frame = merge_proposals(
        {"a": [prop([1]), prop([]), prop([2])], "b": [prop([5])] * 3}, 3, {"a": 5, "b": 0}
    )
    assert frame.row.tolist() == [0, 2]
    assert frame.group_sizes(3).tolist() == [1, 0, 1]
    empty = merge_proposals({"a": [prop([])]}, 1, {})
    assert len(empty) == 0 and empty.score.shape == (0, 1)


def test_bad_input_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown sources"):
        merge_proposals({"a": [prop([1])]}, 1, {"z": 1})
    with pytest.raises(ConfigError, match="gave 1 proposals for 2 rows"):
        merge_proposals({"a": [prop([1])]}, 2, {})
