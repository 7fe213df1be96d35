"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008): two rankers share one list,
clicks are credited to the ranker that contributed the item, and a sign test over many
impressions says which ranker users prefer. It needs far less traffic than an A/B test because
every user compares both rankers in the same list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import binomtest

from serendip.errors import DataError

__all__ = ["TEAMS", "credit", "sign_test", "team_draft"]

#: the two team labels, in the order (ranker a, ranker b)
TEAMS: tuple[str, str] = ("a", "b")


def _rng(seed: int | str) -> np.random.Generator:
    if isinstance(seed, str):
        seed = int.from_bytes(hashlib.blake2b(seed.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng(seed)


def team_draft(
    a: Sequence[str], b: Sequence[str], k: int, *, seed: int | str
) -> tuple[list[str], list[str]]:
    """Interleave rankings `a` and `b` into at most `k` items by team draft.

    Each round a coin (from `seed`) picks which team drafts first; the team with fewer picks so
    far always drafts next, taking its highest-ranked item not yet in the list. Returns
    `(items, teams)` with `teams[i]` "a" or "b", the ranker credited for `items[i]`. Items are
    unique; the list is shorter than `k` only when both rankings run out. Deterministic given
    `seed` (use the request ID so the logged list can be rebuilt).

    >>> team_draft(["x", "y"], ["y", "z"], 3, seed=1)[0]  # doctest: +SKIP
    ['x', 'y', 'z']
    """
    if k < 0:
        raise DataError(f"k must be >= 0, got {k}", field="k")
    rng = _rng(seed)
    items: list[str] = []
    teams: list[str] = []
    taken: set[str] = set()
    pos = {"a": 0, "b": 0}
    lists = {"a": a, "b": b}
    picks = {"a": 0, "b": 0}

    def next_of(team: str) -> str | None:
        ranking = lists[team]
        while pos[team] < len(ranking) and ranking[pos[team]] in taken:
            pos[team] += 1
        return ranking[pos[team]] if pos[team] < len(ranking) else None

    while len(items) < k:
        if picks["a"] < picks["b"]:
            team = "a"
        elif picks["b"] < picks["a"]:
            team = "b"
        else:
            team = "a" if rng.random() < 0.5 else "b"
        item = next_of(team)
        if item is None:
            team = "b" if team == "a" else "a"
            item = next_of(team)
            if item is None:
                break
        items.append(item)
        teams.append(team)
        taken.add(item)
        picks[team] += 1
    return items, teams


def credit(teams: Sequence[str], clicked_positions: Iterable[int]) -> tuple[int, int]:
    """Clicks credited to (a, b): each clicked 0-based position counts once for its team.

    DataError for a position outside the list or a team other than "a"/"b".
    """
    wins = {"a": 0, "b": 0}
    for p in set(clicked_positions):
        if not 0 <= p < len(teams):
            raise DataError(
                f"clicked position {p} outside a list of {len(teams)}", field="position"
            )
        team = teams[p]
        if team not in wins:
            raise DataError(f"unknown team {team!r}; valid: a, b", field="teams")
        wins[team] += 1
    return wins["a"], wins["b"]


def sign_test(wins_a: int, wins_b: int) -> float:
    """Two-sided p-value that rankers a and b are preferred equally often, from the number of
    impressions each won (ties already excluded): exact binomial test of wins_a out of
    wins_a + wins_b against 1/2 (scipy.stats.binomtest). 1.0 when there are no decided
    impressions."""
    if wins_a < 0 or wins_b < 0:
        raise DataError(f"wins must be >= 0, got {wins_a}, {wins_b}", field="wins")
    n = wins_a + wins_b
    if n == 0:
        return 1.0
    return float(binomtest(wins_a, n, 0.5, alternative="two-sided").pvalue)
