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

__all__ = ["TEAMS", "credit", "sign_test", "team_draft", "team_draft_batch"]

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


def team_draft_batch(
    a: np.ndarray, b: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`team_draft` for many lists at once (the simulator's hot loop), on integer item indices.

    `a`, `b`: int (n, L) rankings, -1 padding at the end. Returns `(items, from_b)`: int64
    (n, k) interleaved items (-1 where both rankings ran out) and bool (n, k), True where ranker
    b contributed the item. Same rule as `team_draft`: the team with fewer picks drafts next, a
    coin from `rng` breaks ties, each takes its best item not yet in the list.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise DataError(f"a and b must be (n, L) with the same n, got {a.shape} and {b.shape}")
    n = len(a)
    pad = np.full((n, 1), -1, dtype=np.int64)
    a = np.hstack([a, pad])  # a pointer past the end reads -1
    b = np.hstack([b, pad])
    rows = np.arange(n)
    ptr = np.zeros((2, n), dtype=np.int64)
    picks = np.zeros((2, n), dtype=np.int64)
    items = np.full((n, k), -1, dtype=np.int64)
    from_b = np.zeros((n, k), dtype=bool)
    rankings = (a, b)

    def candidate(team: int) -> np.ndarray:
        ranking = rankings[team]
        limit = ranking.shape[1] - 1
        while True:
            cand = ranking[rows, ptr[team]]
            dup = (cand >= 0) & (items[:, :pos] == cand[:, None]).any(axis=1)
            if not dup.any():
                return cand
            ptr[team] = np.minimum(ptr[team] + dup, limit)

    for pos in range(k):
        coin = rng.random(n) < 0.5
        use_b = (picks[1] < picks[0]) | ((picks[0] == picks[1]) & coin)
        cand_a, cand_b = candidate(0), candidate(1)
        use_b = np.where(use_b, cand_b >= 0, cand_a < 0)  # an exhausted team yields its turn
        chosen = np.where(use_b, cand_b, cand_a)
        items[:, pos] = chosen
        from_b[:, pos] = use_b & (chosen >= 0)
        got = chosen >= 0
        for team, mine in ((0, ~use_b & got), (1, use_b & got)):
            picks[team] += mine
            ptr[team] = np.minimum(ptr[team] + mine, rankings[team].shape[1] - 1)
    return items, from_b


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
