from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serendip.data.vocabulary import Vocabulary
from serendip.errors import DataError


def test_lookups_both_ways() -> None:
    v = Vocabulary(["b", "a", "c"])
    assert len(v) == 3
    assert v.index("a") == 1 and v.id(2) == "c"
    assert v.indices(["c", "zz", "b"]).tolist() == [2, -1, 0]
    assert v.lookup([0, 2]).tolist() == ["b", "c"]
    assert "a" in v and "zz" not in v
    assert v.get("zz") == -1


def test_non_string_ids_become_strings() -> None:
    v = Vocabulary([1, 2, 10])
    assert v.index("10") == 2
    assert v.indices(np.array([2, 1])).tolist() == [1, 0]


def test_duplicates_are_a_data_error() -> None:
    with pytest.raises(DataError, match="duplicate ID 'a'"):
        Vocabulary(["a", "b", "a"])


def test_extend_keeps_existing_indices() -> None:
    v = Vocabulary(["a", "b"])
    w = v.extend(["c", "a", "d", "c"])
    assert w.to_list() == ["a", "b", "c", "d"]
    assert v.extend(["a"]) is v


def test_unknown_single_lookup_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Vocabulary(["a"]).index("b")


@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=5),
        unique=True,
        max_size=50,
    )
)
def test_round_trip(ids: list[str]) -> None:
    v = Vocabulary(ids)
    assert v.lookup(v.indices(ids)).tolist() == ids


def test_shared_vocabularies_build_one_per_distinct_array() -> None:
    from serendip.data.vocabulary import shared_vocabularies

    a = np.array(["u1", "u2", "u3"])
    # outside the block: a new vocabulary each time
    assert Vocabulary.shared(a) is not Vocabulary.shared(a)
    with shared_vocabularies():
        first = Vocabulary.shared(a)
        assert Vocabulary.shared(a.copy()) is first  # equal content, another array
        other = Vocabulary.shared(np.array(["u1", "u2", "u4"]))
        assert other is not first and other.ids.tolist() == ["u1", "u2", "u4"]
        with shared_vocabularies():  # nested: the same cache
            assert Vocabulary.shared(a) is first
        assert Vocabulary.shared(a) is first
    assert Vocabulary.shared(a) is not first  # dropped when the block ends
