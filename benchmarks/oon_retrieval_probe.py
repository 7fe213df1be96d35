"""Last.fm 2K, validation only: can a collaborative model retrieve the held-out out-of-network
items at all? (issue 5's discovery floor; the re-ranking side is in oon_rerank_probe.py.)

On bench_pipeline's validation fold (test never read), for every validation user: the top-k
items of a zoo model's scores outside the user's history and network (items no followee
touched), and two numbers per k -- OON reach (share of held-out out-of-network (user, item)
pairs inside that top-k) and OON hit rate (share of users with at least one). Scorers, each the
zoo model itself (`_score_warm`, what the `collaborative-oon` source ranks by): User-EASE with
bench_pipeline's Last.fm parameters on the whole training data and on its out-of-network
interactions only (each user's items none of their followees touched: discovery learned from
discovery), TF-IDF and sentence-embedding content over the artists' tags, weighted hybrids of
user-ease and content (min-max per user, the blend the `collaborative-oon` runs of
oon_label_gain.py use), and the item-side collaborative models (RP3beta, iALS, EASE; bench_models'
Last.fm parameters) alone and as a third member of that blend. Writes
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

import bench_pipeline as bp
from serendip.models.registry import get_model_class

OUT = bp.RESULTS_DIR / "oon-retrieval-probe-lastfm"
KS = (10, 100, 500)


def main() -> None:
    ds = bp._load("lastfm-2k", Path("/tmp"))
    fold = bp._val_folds("lastfm-2k", bp._split("lastfm-2k", ds).train)[0]
    train = fold.train
    x = train.seen().tocsr().astype(np.float32)
    follows = train.social.adjacency(train.n_users).tocsr()
    follows.data[:] = 1.0
    network = (follows @ x).tocsr()  # items some followee touched (Last.fm items have no authors)
    network.data[:] = 1.0
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
    tuned = bp._params("lastfm-2k")
    ue = tuned.get("user-ease", {})
    in_network = np.asarray(network[train.interactions.user, train.interactions.item]).ravel() > 0
    oon_train = train.filter_interactions(~in_network)  # same user and item vocabularies
    assert (oon_train.n_users, oon_train.n_items) == (train.n_users, train.n_items)

    def scores(name: str, params: dict[str, Any], data: Any = train) -> np.ndarray:
        return get_model_class(name)(params).fit(data)._score_warm(rows)

    raw: dict[str, np.ndarray] = {
        "user-ease on all training interactions": scores("user-ease", ue),
        "user-ease on out-of-network interactions only": scores("user-ease", ue, oon_train),
        "tfidf (artist tags)": scores("tfidf", {}),
    }
    for content in ("tfidf", "sbert"):
        if content != "tfidf":
            raw[f"{content} (artist tags)"] = scores(content, {})
        for w in (0.2, 0.5):
            raw[f"weighted-hybrid user-ease + {w} x {content} (min-max)"] = scores(
                "weighted-hybrid",
                {"members": {"user-ease": ue, content: {}},
                 "weights": {"user-ease": 1.0, content: w}, "normalization": "minmax"},
            )  # fmt: skip
    # Item-side collaborative models rank by co-listening, not by similar users: do they reach
    # out-of-network items user-ease misses? Alone, and as a third member of the best blend.
    for other in ("rp3beta", "ials", "ease"):
        raw[other] = scores(other, tuned[other])
        raw[f"weighted-hybrid user-ease + 0.5 x {other} + 0.2 x tfidf (min-max)"] = scores(
            "weighted-hybrid",
            {"members": {"user-ease": ue, other: tuned[other], "tfidf": {}},
             "weights": {"user-ease": 1.0, other: 0.5, "tfidf": 0.2}, "normalization": "minmax"},
        )  # fmt: skip
    results: list[dict[str, Any]] = []
    for name, values in raw.items():
        s = np.where(blocked, -np.inf, values)
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
        "train_oon_share": float(np.mean(~in_network)),
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
        f"- Lists: the scorer's top k outside the user's history and network; user-ease "
        f"parameters {json.dumps(ue)}.",
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
