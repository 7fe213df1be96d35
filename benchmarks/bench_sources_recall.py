"""How much of the future each candidate source reaches: recall of its top-n on a temporal split.

Stage one decides what the ranker can ever rank, so each source's recall (share of a user's
test items among its n proposals), the union's recall under the default quotas, and how much of
the out-of-network truth (test items none of the user's followees touched in train) each source
reaches, say where quota is worth spending. Not the pipeline's accuracy (that is
bench_pipeline.py); the floor under it.

    .venv/bin/python benchmarks/bench_sources_recall.py                    # small preset
    .venv/bin/python benchmarks/bench_sources_recall.py --preset tiny --users 200

Temporal split (last 20% of interactions as test, `serendip.evaluation.temporal_split`),
sources fitted on train, contexts at the cut. Writes benchmarks/results/sources_recall.md/.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from serendip.data.loaders import load_platform
from serendip.data.synthetic import generate_platform
from serendip.evaluation import temporal_split
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.merge import merge_proposals
from serendip.pipeline.sources import SOURCES, make_source

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--data", type=Path, default=None, help="an existing platform directory")
    ap.add_argument("--users", type=int, default=1000, help="test users sampled")
    ap.add_argument("--n", type=int, default=100, help="proposals per source")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or generate_platform(args.preset, seed=args.seed, out=Path(tmp) / "p")
        ds = load_platform(data)
    split = temporal_split(ds, test_fraction=0.2)
    train, test = split.train, split.test
    cut = float(split.params["cut"])
    created = ds.item_meta.created_at[test.interactions.item]
    unborn = float(np.mean(created > cut))  # items no source may propose at the cut
    print(ds, "cut", cut, "test interactions on items created after it", unborn, flush=True)

    truth_users = np.unique(test.interactions.user)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(truth_users, size=min(args.users, len(truth_users)), replace=False))
    users = list(ds.users.lookup(sample))
    contexts = contexts_from_dataset(train, users, now=cut)
    test_seen = test.seen()
    train_seen = train.seen()
    truth = [set(test_seen[u].indices.tolist()) for u in sample]
    oon_truth = []
    for u, c, t in zip(sample, contexts, truth, strict=True):
        touched = set(train_seen[c.followees].indices.tolist()) if len(c.followees) else set()
        oon_truth.append(t - touched)
        del u

    props = {}
    rows = []
    for name in SOURCES:
        src = make_source(name)
        t0 = time.perf_counter()
        src.fit(train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        props[name] = src.propose_batch(contexts, args.n)
        prop_s = time.perf_counter() - t0
        rec, oon, size = [], [], []
        for p, t, o in zip(props[name], truth, oon_truth, strict=True):
            got = set(p.items.tolist())
            size.append(len(got))
            rec.append(len(got & t) / len(t))
            if o:
                oon.append(len(got & o) / len(o))
        rows.append(
            {
                "source": name,
                "recall": float(np.mean(rec)),
                "oon_recall": float(np.mean(oon)) if oon else float("nan"),
                "mean_proposals": float(np.mean(size)),
                "fit_s": fit_s,
                "propose_ms_per_user": prop_s / len(contexts) * 1000,
            }
        )
        print(rows[-1], flush=True)
    quotas = {
        "in-network": 60,
        "collaborative": 100,
        "recent-item-knn": 60,
        "content": 40,
        "trending": 20,
        "fresh-followed": 20,
        "explore": 40,
    }
    frame = merge_proposals(props, len(contexts), quotas)
    union_rec, union_oon = [], []
    bounds = np.searchsorted(frame.row, np.arange(len(contexts) + 1))
    for r, (t, o) in enumerate(zip(truth, oon_truth, strict=True)):
        got = set(frame.item[bounds[r] : bounds[r + 1]].tolist())
        union_rec.append(len(got & t) / len(t))
        if o:
            union_oon.append(len(got & o) / len(o))
    union = {
        "quotas": quotas,
        "recall": float(np.mean(union_rec)),
        "oon_recall": float(np.mean(union_oon)),
        "mean_candidates": len(frame) / len(contexts),
    }
    print("union", union, flush=True)
    if args.no_write:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "dataset": repr(ds),
        "users": len(contexts),
        "n": args.n,
        "sources": rows,
        "union": union,
        "oon_users": len([o for o in oon_truth if o]),
    }
    (RESULTS / "sources_recall.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# Candidate sources: recall of the future (temporal split, last 20% as test)",
        "",
        f"Dataset: {ds!r}; {len(contexts)} sampled test users, top-{args.n} per source, "
        "contexts at the cut. Out-of-network recall counts only test items none of the user's "
        "followees touched in train. Written by `benchmarks/bench_sources_recall.py`.",
        "",
        f"{unborn:.0%} of the test interactions are on items created after the cut, which no "
        "source may propose at the cut (they do not exist yet): recall cannot approach 1.",
        "",
        "| source | recall@n | OON recall@n | proposals | fit s | propose ms/user |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['source']} | {row['recall']:.3f} | {row['oon_recall']:.3f} | "
            f"{row['mean_proposals']:.0f} | {row['fit_s']:.1f} | "
            f"{row['propose_ms_per_user']:.2f} |"
        )
    lines += [
        f"| union (quotas {quotas}) | {union['recall']:.3f} | {union['oon_recall']:.3f} | "
        f"{union['mean_candidates']:.0f} | | |",
        "",
    ]
    (RESULTS / "sources_recall.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
