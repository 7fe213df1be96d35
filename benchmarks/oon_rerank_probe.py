"""Last.fm 2K, validation only: list-building strategies for out-of-network discovery (issue 5).

OON HitRate@10 counts users with at least one hit outside their network, so one good
out-of-network item per list is worth as much as five; NDCG@10 weighs the top positions most.
Probed here on bench_pipeline's validation fold (test never read), over the same candidates and
ranker scores:
- `plain`: the ranker's order; `boost`: + b for out-of-network candidates (the current knob);
- `tail s`: the ranker's first 10 - s items, then the s best out-of-network candidates (by the
  OON ranker's score when one is given: a second ranker trained with `oon_label_gain`);
- `xquad l`: greedy, value = p_i (1 + l * oon_i * P(no OON hit yet)) with p the ranker's score
  calibrated to a hit probability (logistic fit on this fold: a probe, not a result).

    python benchmarks/oon_rerank_probe.py [--gain-a 0 --gain-b 3]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression

import bench_pipeline as bp
from serendip.evaluation import evaluate_recommendations
from serendip.models.base import RecLists

OUT = bp.RESULTS_DIR / "oon-rerank-probe-lastfm"
BASE_RANKER = {**bp.LASTFM_DEEPER, "ranker.num_leaves": 7, "ranker.colsample_bytree": 0.5}
K = 10


def _fit(gain: int, fold: Any, tuned: dict[str, Any]) -> Any:
    params = bp._pipeline_params(
        "user-ease", tuned.get("user-ease", {}), ("ials", tuned.get("ials", {})), "random",
        {**BASE_RANKER, "ranker.oon_label_gain": gain},
    )  # fmt: skip
    return bp._fit("pipeline", params, fold.train)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gain-a", type=int, default=0)
    ap.add_argument("--gain-b", type=int, default=3)
    ap.add_argument("--markdown-only", action="store_true")
    args = ap.parse_args()
    if args.markdown_only:
        write_markdown()
        return
    ds = bp._load("lastfm-2k", Path("/tmp"))
    split = bp._split("lastfm-2k", ds)
    fold = bp._val_folds("lastfm-2k", split.train)[0]
    tuned = bp._params("lastfm-2k")
    ref = bp._validate_single("user-ease", tuned.get("user-ease", {}), [fold])[0]
    users = bp._test_users(fold)
    a = _fit(args.gain_a, fold, tuned)
    ranked_a = bp._ranked(a, users)
    b = _fit(args.gain_b, fold, tuned) if args.gain_b != args.gain_a else a
    ranked_b = bp._ranked(b, users) if b is not a else ranked_a
    # per user: allowed candidates, scores of both rankers, in-network flags, labels
    test = fold.test.interactions
    t_users = fold.test.users.ids[test.user]
    t_items = fold.test.items.ids[test.item]
    held: dict[str, set[str]] = {}
    for u, i in zip(t_users, t_items, strict=True):
        held.setdefault(str(u), set()).add(str(i))
    rows = []
    for (ctx, cand, sa), (_, cand_b, sb) in zip(ranked_a, ranked_b, strict=True):
        ok = a._rules_allow(cand, ctx, None, True)
        cand, sa = cand[ok], sa[ok]
        by_item = dict(zip(cand_b.tolist(), sb.tolist(), strict=True))
        sb2 = np.array([by_item.get(int(i), -np.inf) for i in cand])
        net = a._in_network(ctx, cand)
        hit = np.isin(a.items_.ids[cand].astype(str), list(held.get(str(ctx.user), ())))
        rows.append((ctx.user, cand, sa, sb2, net, hit))
    # calibration (probe only): logistic on the A ranker's score
    xs = np.concatenate([r[2] for r in rows])[:, None]
    ys = np.concatenate([r[5] for r in rows])
    cal = LogisticRegression().fit(xs, ys)

    def evaluate(lists: list[np.ndarray]) -> dict[str, float]:
        items = np.full((len(rows), K), -1, np.int64)
        for j, lst in enumerate(lists):
            items[j, : len(lst)] = lst[:K]
        scores = np.where(items >= 0, -np.arange(K, dtype=np.float32)[None, :], -np.inf)
        recs = RecLists(np.array([r[0] for r in rows], dtype=object), items,
                        scores.astype(np.float32), a.items_)  # fmt: skip
        m = evaluate_recommendations(recs, fold.train, fold.test, k=K).metrics
        return {"ndcg": m["ndcg@10"] / ref["ndcg@10"], "oon": m["oon_hit_rate@10"] / ref[
            "oon_hit_rate@10"], "coverage": m["coverage@10"]}  # fmt: skip

    results = []

    def report(name: str, lists: list[np.ndarray]) -> None:
        m = evaluate(lists)
        results.append({"strategy": name, **m})
        print(f"{name:28s} NDCG {m['ndcg']:.3f}x  OON {m['oon']:.2f}x  cov {m['coverage']:.3f}",
              flush=True)  # fmt: skip

    for which, idx in (("A", 2), ("B", 3)):
        report(f"plain {which}", [r[1][np.argsort(-r[idx], kind="stable")] for r in rows])
    for boost in (0.05, 0.1, 0.2):
        lists = []
        for r in rows:
            s = r[2]
            rel = (s - s.min()) / max(s.max() - s.min(), 1e-12) + boost * ~r[4]
            lists.append(r[1][np.argsort(-rel, kind="stable")])
        report(f"boost A {boost}", lists)
    for oon_src, idx in (("A", 2), ("B", 3)):
        for s_tail in (1, 2, 3, 4, 5, 6):
            lists = []
            for r in rows:
                by_a = r[1][np.argsort(-r[2], kind="stable")]
                head = by_a[: K - s_tail]
                taken = set(head.tolist())
                rest = np.argsort(-r[idx], kind="stable")
                fill = [int(r[1][j]) for j in rest if not r[4][j] and r[1][j] not in taken]
                fill = fill[:s_tail]
                if len(fill) < s_tail:  # too few out-of-network candidates: the ranker's next
                    taken.update(fill)
                    fill += [int(i) for i in by_a if i not in taken][: s_tail - len(fill)]
                lists.append(np.concatenate([head, np.asarray(fill, np.int64)]))
            report(f"tail {s_tail} oon-by-{oon_src}", lists)
    for lam in (0.5, 1.0, 2.0, 4.0, 8.0):
        lists = []
        for r in rows:
            p = cal.predict_proba(r[2][:, None])[:, 1]
            oon = ~r[4]
            chosen: list[int] = []
            left = np.ones(len(p), bool)
            miss = 1.0
            for _ in range(min(K, len(p))):
                value = np.where(left, p * (1 + lam * oon * miss), -np.inf)
                j = int(np.argmax(value))
                chosen.append(j)
                left[j] = False
                if oon[j]:
                    miss *= 1 - p[j]
            lists.append(r[1][chosen])
        report(f"xquad {lam}", lists)
    OUT.with_suffix(".json").write_text(json.dumps(
        {"gains": [args.gain_a, args.gain_b], "reference": ref, "results": results},
        indent=1, default=float) + "\n")  # fmt: skip
    write_markdown()


def write_markdown() -> None:
    run = json.loads(OUT.with_suffix(".json").read_text())
    (gain_a, gain_b), ref, results = run["gains"], run["reference"], run["results"]
    lines = [
        "## Out-of-network list strategies (Last.fm 2K, validation; issue 5)",
        "",
        f"- Command: `python benchmarks/oon_rerank_probe.py --gain-a {gain_a} --gain-b "
        f"{gain_b}`: ranker A trained with oon_label_gain {gain_a}, ranker B with {gain_b} "
        "(bench_pipeline's Last.fm base otherwise), one validation fold carved from "
        "bench_pipeline's train part; test never read.",
        f"- Reference: user-ease on the fold, NDCG@10 {ref['ndcg@10']:.4f}, OON HitRate@10 "
        f"{ref['oon_hit_rate@10']:.4f}. Floors: NDCG >= 1.03x and OON >= 1.5x together.",
        "",
        "| strategy | NDCG@10 x ref | OON HitRate@10 x ref | coverage@10 |",
        "|---|---:|---:|---:|",
        *(f"| {r['strategy']} | {r['ndcg']:.3f} | {r['oon']:.2f} | {r['coverage']:.3f} |"
          for r in results),
    ]  # fmt: skip
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
