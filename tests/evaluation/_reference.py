"""A naive, independent reference implementation of the evaluation protocol, for the tests.

Plain Python: dicts of sets, loops, `math.log2`. Written from the metric definitions, not from
`serendip.evaluation.metrics`, so the two agreeing is evidence that both are right.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence


def user_accuracy(rec: Sequence[int], truth: set[int], k: int) -> dict[str, float]:
    """Accuracy metrics of one list (entries < 0 are empty slots) against one truth set."""
    hit_positions = [
        p for p, item in enumerate(list(rec)[:k], start=1) if item >= 0 and item in truth
    ]
    n_hits = len(hit_positions)
    if not truth:
        return dict.fromkeys(
            ("precision", "recall", "recall_capped", "ndcg", "map", "mrr", "hit_rate"), 0.0
        ) | {"precision": n_hits / k}
    ideal_len = min(len(truth), k)
    dcg = sum(1.0 / math.log2(p + 1) for p in hit_positions)
    idcg = sum(1.0 / math.log2(p + 1) for p in range(1, ideal_len + 1))
    ap = 0.0
    for j, p in enumerate(hit_positions, start=1):
        ap += j / p
    return {
        "precision": n_hits / k,
        "recall": n_hits / len(truth),
        "recall_capped": n_hits / ideal_len,
        "ndcg": dcg / idcg,
        "map": ap / ideal_len,
        "mrr": 1.0 / hit_positions[0] if hit_positions else 0.0,
        "hit_rate": 1.0 if hit_positions else 0.0,
    }


def gini_by_differences(values: Sequence[float]) -> float:
    """Gini as the mean absolute difference over all ordered pairs / (2 * mean)."""
    n = len(values)
    total = sum(values)
    if n == 0 or total == 0:
        return 0.0
    # Group equal values (exposure counts repeat a lot) so large catalogs stay quick.
    counts = Counter(values)
    diff = sum(ca * cb * abs(a - b) for a, ca in counts.items() for b, cb in counts.items())
    return diff / (2.0 * n * n * (total / n))


def jaccard_distance(a: set[str], b: set[str]) -> float:
    union = a | b
    if not union:
        return 0.0
    return 1.0 - len(a & b) / len(union)


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 1.0
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def mean_pairwise(items: Sequence[int], dist) -> float:  # type: ignore[no-untyped-def]
    pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]
    if not pairs:
        return 0.0
    return sum(dist(a, b) for a, b in pairs) / len(pairs)


def popularity_baseline(
    train: Mapping[int, set[int]], n_items: int, k: int
) -> dict[int, list[int]]:
    """Each user's top-k of items by training popularity (users), skipping their own items."""
    pop = [0] * n_items
    for items in train.values():
        for i in items:
            pop[i] += 1
    ranking = sorted(range(n_items), key=lambda i: (-pop[i], i))
    out = {}
    for u, seen in train.items():
        out[u] = [i for i in ranking if i not in seen][:k]
    return out


def evaluate(
    recs: Mapping[int, Sequence[int]],
    train: Mapping[int, set[int]],
    test: Mapping[int, set[int]],
    n_items: int,
    k: int,
    *,
    all_users: Iterable[int],
    content: Sequence[set[str]] | None = None,
    follows: Mapping[int, set[int]] | None = None,
    author: Sequence[int] | None = None,
) -> dict[str, float]:
    """Overall metrics @k, averaged over users whose test set minus train set is non-empty."""
    train = defaultdict(set, train)
    pop = [0] * n_items
    for items in train.values():
        for i in items:
            pop[i] += 1
    n_population = sum(1 for items in train.values() if items)
    ranking = sorted(range(n_items), key=lambda i: (-pop[i], i))
    users = [u for u in sorted(all_users) if test.get(u, set()) - train[u]]
    sums: dict[str, float] = defaultdict(float)
    exposure = [0] * n_items
    total_hits = 0
    oon_hits_total = 0
    for u in users:
        truth = test[u] - train[u]
        rec = [i for i in list(recs.get(u, []))[:k] if i >= 0]
        for name, v in user_accuracy(rec, truth, k).items():
            sums[name] += v
        for i in rec:
            exposure[i] += 1
        if rec:
            sums["novelty"] += sum(-math.log2(max(pop[i], 1) / n_population) for i in rec) / len(
                rec
            )
            sums["arp"] += sum(pop[i] for i in rec) / len(rec)
        baseline: set[int] = set()
        for i in ranking:
            if len(baseline) == k:
                break
            if i not in train[u]:
                baseline.add(i)
        hits = [i for i in rec if i in truth]
        total_hits += len(hits)
        sums["serendipity"] += sum(1 for i in hits if i not in baseline) / k
        if content is not None:
            sums["ild"] += mean_pairwise(rec, lambda a, b: jaccard_distance(content[a], content[b]))
        if follows is not None:
            friends = follows.get(u, set())
            network = set()
            for f in friends:
                network |= train[f]
            if author is not None:
                network |= {i for i in range(n_items) if author[i] in friends}
            out = [i for i in rec if i not in network]
            sums["oon_share"] += len(out) / len(rec) if rec else 0.0
            oon_hits = [i for i in hits if i not in network]
            oon_hits_total += len(oon_hits)
            sums["oon_hit_rate"] += 1.0 if oon_hits else 0.0
    n = len(users)
    result = {name: v / n for name, v in sums.items()}
    for name in ("novelty", "arp"):
        result.setdefault(name, 0.0)
    result["coverage"] = sum(1 for e in exposure if e) / n_items
    result["gini"] = gini_by_differences(exposure)
    if follows is not None:
        result["oon_hit_share"] = oon_hits_total / total_hits if total_hits else 0.0
    return result
