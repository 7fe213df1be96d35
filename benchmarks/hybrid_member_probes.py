"""Cheap probes for a new weighted-hybrid member on MovieLens 100K, validation only.

Each probe scores the validation users of four carvings of the benchmark's training part (seeds
42-45, 10% held out per user; test never read) with EDLAE (ease l2 200, dropout 0.7, the strongest
member) and with candidate signals, alone and in rank-normalised blends with EDLAE, and prints
mean NDCG@10 and the paired per-user difference to EDLAE with its standard error. A signal worth
a full `hybrid_search.py` run must add to EDLAE here. Stop 10's probes (numbers in its note):

    python benchmarks/hybrid_member_probes.py --probe period      # popularity in the user's active period
    python benchmarks/hybrid_member_probes.py --probe sequence    # items adjacent in users' histories
    python benchmarks/hybrid_member_probes.py --probe confidence  # rating-weighted input
    python benchmarks/hybrid_member_probes.py --probe user-ease   # User-EDLAE grid
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_models import LOADERS, SHARED
from serendip.data.dataset import Dataset
from serendip.evaluation import random_split, validation_split
from serendip.evaluation.metrics import hit_matrix, ndcg
from serendip.models.base import top_k
from serendip.models.hybrid._members import normalise
from serendip.models.registry import create_model

EDLAE = ("ease", {"l2": 200.0, "dropout": 0.7})


def period_popularity(train: Dataset, users: np.ndarray, tau_days: float) -> np.ndarray:
    """Interactions weighted by exp(-|day - user's day| / tau), over the user's active days."""
    it = train.interactions
    day = np.floor((it.timestamp - np.nanmin(it.timestamp)) / 86400).astype(int)
    n_days = day.max() + 1
    ones = np.ones(len(day))
    per_item = sp.csr_matrix((ones, (it.item, day)), shape=(train.n_items, n_days)).toarray()
    per_user = sp.csr_matrix((ones, (it.user, day)), shape=(train.n_users, n_days)).toarray()
    per_user /= np.maximum(per_user.sum(1, keepdims=True), 1)
    d = np.arange(n_days)
    kernel = np.exp(-np.abs(d[:, None] - d[None, :]) / tau_days)
    return (per_user[users] @ kernel @ per_item.T).astype(np.float32)


def sequence_adjacency(train: Dataset, users: np.ndarray, window: int, decay: float) -> np.ndarray:
    """Items within `window` positions of each other in users' time-ordered histories,
    weighted decay^(distance - 1), degree-normalised; scored from the user's history."""
    it = train.interactions
    order = np.lexsort((it.item, it.timestamp, it.user))
    u, i = it.user[order], it.item[order]
    rows, cols, vals = [], [], []
    for off in range(1, window + 1):
        same = u[off:] == u[:-off]
        a, b = i[:-off][same], i[off:][same]
        rows += [a, b]
        cols += [b, a]
        vals += [np.full(len(a), decay ** (off - 1))] * 2
    n = train.n_items
    adj = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    deg = np.asarray(train.seen().sum(0)).ravel() + 1
    adj = sp.diags(1 / np.sqrt(deg)) @ adj @ sp.diags(1 / np.sqrt(deg))
    return np.asarray((train.seen()[users] @ adj).todense(), dtype=np.float32)


def _model(name: str, params: dict[str, Any]) -> Callable[[Dataset, np.ndarray], np.ndarray]:
    return lambda train, users: np.asarray(create_model(name, params).fit(train)._score_warm(users))


PROBES: dict[
    str, tuple[dict[str, Callable[[Dataset, np.ndarray], np.ndarray]], tuple[float, ...]]
] = {
    "period": (
        {
            "popularity": _model("popularity", {}),
            **{
                f"period{t}": (lambda tr, us, t=t: period_popularity(tr, us, t))
                for t in (3, 10, 30)
            },
        },
        (0.05, 0.1, 0.2, 0.3),
    ),
    "sequence": (
        {
            f"seq{w}": (lambda tr, us, w=w, d=d: sequence_adjacency(tr, us, w, d))
            for w, d in ((1, 1.0), (3, 0.7), (10, 0.8), (30, 0.9))
        },
        (0.1, 0.2, 0.3, 0.5),
    ),
    "confidence": (
        {
            "ease-log1p": _model("ease", {**EDLAE[1], "confidence": "log1p"}),
            "ease-linear": _model("ease", {"l2": 400.0, "dropout": 0.7, "confidence": "linear"}),
        },
        (),
    ),
    "user-ease": (
        {
            f"user-ease@l{l2:g}d{p:g}": _model("user-ease", {"l2": float(l2), "dropout": p})
            for l2, p in ((50, 0.8), (100, 0.8), (200, 0.7), (300, 0.5), (320, 0.62))
        },
        (0.2, 0.35, 0.5),
    ),
}


def _ndcg(scores: np.ndarray, seen: sp.csr_matrix, truth: sp.csr_matrix) -> np.ndarray:
    s = np.array(scores, dtype=np.float32)
    r, c = seen.nonzero()
    s[r, c] = -np.inf
    recs, _ = top_k(s, 10)
    return np.asarray(ndcg(hit_matrix(recs, truth), np.diff(truth.indptr)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probe", choices=sorted(PROBES), required=True)
    args = ap.parse_args()
    signals, blend_weights = PROBES[args.probe]
    split = random_split(LOADERS["ml-100k"](SHARED / "ml-100k"), seed=42, min_interactions=5)
    res: dict[str, list[np.ndarray]] = {}
    for seed in (42, 43, 44, 45):
        v = validation_split(
            split.train, "random", test_fraction=0.1, seed=seed, min_interactions=5
        )
        truth = v.test.seen()
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        truth, seen = truth[users], v.train.seen()[users]
        parts = {"edlae": _model(*EDLAE)(v.train, users)}
        parts.update({k: f(v.train, users) for k, f in signals.items()})
        norm = {k: normalise(x, seen, "rank", rank_constant=60.0) for k, x in parts.items()}
        for k, x in parts.items():
            res.setdefault(k, []).append(_ndcg(x, seen, truth))
        for k in signals:
            for w in blend_weights:
                blend = (1 - w) * norm["edlae"] + w * norm[k]
                res.setdefault(f"edlae+{w}*{k}", []).append(_ndcg(blend, seen, truth))
        print(f"carving {seed} done", flush=True)
    base = np.concatenate(res["edlae"])
    for k, v in res.items():
        x = np.concatenate(v)
        d = x - base
        print(f"{k:28s} {x.mean():.4f}  diff {d.mean():+.4f} se {d.std() / np.sqrt(len(d)):.4f}")


if __name__ == "__main__":
    main()
