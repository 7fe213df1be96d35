from __future__ import annotations

import pytest

from serendip.errors import DataError
from serendip.experiments.interleaving import credit, sign_test, team_draft


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
