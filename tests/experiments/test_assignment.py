from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from scipy.stats import chisquare

from serendip.errors import DataError
from serendip.experiments.assignment import assign, new_salt, unit_hash

VARIANTS = [("control", 0.5), ("treatment", 0.3), ("other", 0.2)]


def test_sticky_and_same_in_another_process() -> None:
    users = [f"u{i}" for i in range(50)]
    here = [assign(u, "salt-1", VARIANTS) for u in users]
    assert here == [assign(u, "salt-1", VARIANTS) for u in users]
    code = (
        "from serendip.experiments.assignment import assign;"
        f"print(','.join(assign(u, 'salt-1', {VARIANTS!r}) for u in {users!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == here


def test_shares_are_respected() -> None:
    counts = Counter(assign(f"user-{i}", "s", VARIANTS) for i in range(20_000))
    observed = [counts[name] for name, _ in VARIANTS]
    expected = [share * 20_000 for _, share in VARIANTS]
    assert chisquare(observed, expected).pvalue > 0.001


def test_salt_reshuffles_users() -> None:
    two = [("a", 0.5), ("b", 0.5)]
    first = [assign(f"u{i}", "one", two) for i in range(2000)]
    second = [assign(f"u{i}", "two", two) for i in range(2000)]
    same = sum(x == y for x, y in zip(first, second, strict=True))
    assert 850 < same < 1150  # independent splits agree about half the time


def test_unit_hash_in_unit_interval() -> None:
    values = [unit_hash("s", f"u{i}") for i in range(1000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert len(set(values)) == 1000


@pytest.mark.parametrize(
    "variants",
    [
        [],
        [("a", 0.5), ("b", 0.4)],
        [("a", 0.0), ("b", 1.0)],
        [("a", -0.5), ("b", 1.5)],
        [("a", 0.5), ("a", 0.5)],
        [("", 1.0)],
    ],
)
def test_bad_shares_raise(variants: list[tuple[str, float]]) -> None:
    with pytest.raises(DataError):
        assign("u", "s", variants)


def test_empty_salt_raises() -> None:
    with pytest.raises(DataError, match="salt"):
        assign("u", "", [("a", 1.0)])


def test_new_salt_is_fresh() -> None:
    assert new_salt() != new_salt()
    assert len(new_salt()) == 32
