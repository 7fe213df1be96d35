from __future__ import annotations

import numpy as np
import pytest

from serendip.errors import DataError
from serendip.experiments.interleaving import credit, sign_test, team_draft, team_draft_batch


def test_team_draft_contains_both_rankers_tops_and_is_unique() -> None:
    a = [f"a{i}" for i in range(10)]
    b = [f"b{i}" for i in range(10)]
    items, teams = team_draft(a, b, 10, seed="req-1")
    assert len(items) == 10 == len(set(items))
    assert teams.count("a") == teams.count("b") == 5
    # each team's picks are its own ranking's prefix, in order
    assert [x for x, t in zip(items, teams, strict=True) if t == "a"] == a[:5]
    assert [x for x, t in zip(items, teams, strict=True) if t == "b"] == b[:5]


def test_team_draft_is_deterministic_given_seed_and_varies_across_seeds() -> None:
    a, b = list("abcdef"), list("fedcba")
    assert team_draft(a, b, 6, seed="r1") == team_draft(a, b, 6, seed="r1")
    firsts = {team_draft(a, b, 6, seed=s)[1][0] for s in range(40)}
    assert firsts == {"a", "b"}


def test_shared_items_are_taken_once_and_short_lists_fill_from_the_other() -> None:
    items, teams = team_draft(["x", "y"], ["x", "z", "w", "v"], 5, seed=3)
    assert sorted(items) == ["v", "w", "x", "y", "z"]
    assert len(teams) == 5
    assert team_draft([], [], 5, seed=0) == ([], [])
    items, teams = team_draft(["x"], [], 3, seed=0)
    assert (items, teams) == (["x"], ["a"])


def test_identical_rankings_split_credit_evenly_in_expectation() -> None:
    ranking = [f"i{i}" for i in range(10)]
    wins = [0, 0]
    for s in range(400):
        _, teams = team_draft(ranking, ranking, 10, seed=s)
        ca, cb = credit(teams, [0])
        wins[0] += ca
        wins[1] += cb
    assert sign_test(*wins) > 0.01


def test_credit_counts_clicks_per_team() -> None:
    assert credit(["a", "b", "a", "b"], [0, 2, 3]) == (2, 1)
    assert credit(["a", "b"], []) == (0, 0)
    assert credit(["a", "b"], [1, 1]) == (0, 1)
    with pytest.raises(DataError):
        credit(["a", "b"], [2])


def test_sign_test() -> None:
    assert sign_test(50, 50) == pytest.approx(1.0)
    assert sign_test(0, 0) == 1.0
    assert sign_test(70, 30) < 0.001
    assert sign_test(7, 3) == pytest.approx(0.34375)  # exact binomial, two-sided
    with pytest.raises(DataError):
        sign_test(-1, 3)


def test_team_draft_batch_follows_the_team_draft_rule() -> None:
    rng = np.random.default_rng(0)
    n, length, k = 300, 8, 6
    a = np.stack([rng.permutation(12)[:length] for _ in range(n)])
    b = np.stack([rng.permutation(12)[:length] for _ in range(n)])
    b[:5, 3:] = -1  # short rankings
    items, from_b = team_draft_batch(a, b, k, rng)
    assert items.shape == (n, k)
    for row in range(n):
        got = items[row][items[row] >= 0].tolist()
        assert len(got) == len(set(got)) == k
        taken: list[int] = []
        for item, team_b in zip(items[row], from_b[row], strict=True):
            ranking = (b if team_b else a)[row]
            # a team takes its best item not yet in the list
            assert item == next(x for x in ranking if x >= 0 and x not in taken)
            taken.append(int(item))
        picks_b = int(from_b[row].sum())
        if row >= 5:
            assert picks_b == k // 2  # even k: equal picks
    first_b = from_b[5:, 0].mean()
    assert 0.4 < first_b < 0.6  # the coin decides who drafts first


def test_team_draft_batch_runs_out_gracefully() -> None:
    a = np.array([[1, -1, -1]])
    b = np.array([[-1, -1, -1]])
    items, from_b = team_draft_batch(a, b, 3, np.random.default_rng(0))
    assert items.tolist() == [[1, -1, -1]] and not from_b.any()
    with pytest.raises(DataError):
        team_draft_batch(np.zeros((2, 3)), np.zeros((3, 3)), 2, np.random.default_rng(0))
