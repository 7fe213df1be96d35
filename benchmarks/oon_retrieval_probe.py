"""Last.fm 2K, validation only: can a collaborative model retrieve the held-out out-of-network
items at all? (issue 5's discovery floor; the re-ranking side is in oon_rerank_probe.py.)

On bench_pipeline's validation fold (test never read), for every validation user: the top-k
items of a User-EASE scorer outside the user's history and network (items no followee touched),
and two numbers per k -- OON reach (share of held-out out-of-network (user, item) pairs inside
that top-k) and OON hit rate (share of users with at least one). Scorers: User-EASE on the whole
training matrix (bench_pipeline's Last.fm l2 and dropout, on the binary matrix rather than its
log1p listening counts), and User-EASE fitted on the
out-of-network interactions only (each user's items that none of their followees touched:
niche co-occurrences, the idea being that discovery is learned from discovery). Writes
`benchmarks/results/oon-retrieval-probe-lastfm.md|json`.

    python benchmarks/oon_retrieval_probe.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import scipy.sparse as sp

import bench_pipeline as bp

OUT = bp.RESULTS_DIR / "oon-retrieval-probe-lastfm"
KS = (10, 100, 500)


def user_ease_scores(x: sp.csr_matrix, rows: np.ndarray, l2: float, dropout: float) -> np.ndarray:
    """User-EASE (EDLAE dropout) scores of `rows`' users over all items, in numpy (the model's
    closed form: W = -P / diag(P), P = (X X^T + l2 + dropout / (1 - dropout) diag(X X^T))^-1)."""
    g = (x @ x.T).toarray().astype(np.float64)
    d = np.diag(g).copy()
    g[np.diag_indices_from(g)] += l2 + dropout / (1.0 - dropout) * d
    p = np.linalg.inv(g)
    w = -p / np.diag(p)
    w[np.diag_indices_from(w)] = 0.0
    return np.asarray(sp.csr_matrix(w[rows]) @ x.todense())


def content_scores(train: Any, x: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Cosine of each item's TF-IDF vector (Last.fm: the tags users gave the artist, by the
    pipeline's content vectorisation) to the mean vector of the user's history."""
    from sklearn.preprocessing import normalize

    from serendip.pipeline.sources.content import fit_item_vectors

    vectors, _, _ = fit_item_vectors(train, "tfidf")
    profile = normalize(sp.csr_matrix(x[rows]) @ sp.csr_matrix(vectors))
    return np.asarray((profile @ sp.csr_matrix(vectors).T).todense())


def _unit(s: np.ndarray) -> np.ndarray:
    """Per-row scores scaled to [0, 1] (for a blend)."""
    lo, hi = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
    return (s - lo) / np.maximum(hi - lo, 1e-12)


def main() -> None:
    ds = bp._load("lastfm-2k", Path("/tmp"))
    fold = bp._val_folds("lastfm-2k", bp._split("lastfm-2k", ds).train)[0]
    train = fold.train
    x = train.seen().tocsr().astype(np.float32)
    follows = train.social.adjacency(train.n_users).tocsr()
    follows.data[:] = 1.0
    network = (follows @ x).tocsr()  # items some followee touched (Last.fm items have no authors)
    network.data[:] = 1.0
    oon_only = (x - x.multiply(network)).tocsr()
    oon_only.eliminate_zeros()
    test = fold.test.interactions
    users = train.users.indices(fold.test.users.ids[test.user])
    items = np.array([train.items.get(str(i)) for i in fold.test.items.ids[test.item]])
    ok = (users >= 0) & (items >= 0)
    users, items = users[ok], items[ok]
    is_oon = np.asarray(network[users, items]).ravel() == 0
    rows = np.unique(users)
    held: dict[int, set[int]] = {}
    for u, i in zip(users[is_oon], items[is_oon], strict=True):
        held.setdefault(int(u), set()).add(int(i))
    n_held = sum(len(v) for v in held.values())
    blocked = (x[rows] + network[rows]).toarray() > 0
    params = bp._params("lastfm-2k").get("user-ease", {})
    l2, dropout = float(params.get("l2", 320.0)), float(params.get("dropout", 0.62))
    scorers = {
        f"user-ease (l2 {l2:.0f}, dropout {dropout:.2f}) on all training interactions": (x, l2, dropout),
        f"user-ease (l2 {l2:.0f}, dropout {dropout:.2f}) on out-of-network interactions only": (
            oon_only, l2, dropout),
        "user-ease (l2 300, dropout 0.5) on out-of-network interactions only": (oon_only, 300.0, 0.5),
    }  # fmt: skip
    full = user_ease_scores(x, rows, l2, dropout)
    content = content_scores(train, x, rows)
    raw: dict[str, np.ndarray] = {
        name: full if m is x else user_ease_scores(m, rows, reg, drop)
        for name, (m, reg, drop) in scorers.items()
    }
    raw["TF-IDF content (artist tags) to the history profile"] = content
    for w in (0.2, 0.5):
        raw[f"user-ease (all) + {w} x TF-IDF content, each scaled to [0, 1] per user"] = _unit(
            full
        ) + w * _unit(content)
    results: list[dict[str, Any]] = []
    for name, scores in raw.items():
        s = np.where(blocked, -np.inf, scores)
        order = np.argsort(-s, axis=1)
        for k in KS:
            top = order[:, :k]
            found = [
                len(held.get(int(u), set()) & set(top[r].tolist())) for r, u in enumerate(rows)
            ]
            row = {"scorer": name, "k": k, "oon_reach": sum(found) / n_held,
                   "oon_hit_rate": float(np.mean(np.asarray(found) > 0))}  # fmt: skip
            results.append(row)
            print(row, flush=True)
    summary = {
        "validation_users": len(rows),
        "held_out_pairs": len(users),
        "held_out_oon_share": float(is_oon.mean()),
        "train_oon_share": oon_only.nnz / x.nnz,
    }
    OUT.with_suffix(".json").write_text(
        json.dumps({"summary": summary, "results": results}, indent=1) + "\n"
    )
    lines = [
        "## Out-of-network retrieval (Last.fm 2K, validation; issue 5)",
        "",
        "- Command: `python benchmarks/oon_retrieval_probe.py`; bench_pipeline's validation fold, "
        "test never read.",
        f"- {summary['validation_users']} validation users, {summary['held_out_pairs']} held-out "
        f"pairs, {summary['held_out_oon_share']:.1%} of them out of network (training: "
        f"{summary['train_oon_share']:.1%}).",
        "- Lists: the scorer's top k outside the user's history and network.",
        "",
        "| scorer | k | OON reach | OON hit rate |",
        "|---|---:|---:|---:|",
        *(f"| {r['scorer']} | {r['k']} | {r['oon_reach']:.3f} | {r['oon_hit_rate']:.3f} |"
          for r in results),
    ]  # fmt: skip
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
