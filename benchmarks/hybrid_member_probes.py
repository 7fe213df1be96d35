"""Cheap probes for a new weighted-hybrid member on MovieLens 100K, validation only.

Two baselines a candidate signal is added to (test never read):

- `--against edlae` (stop 10): the validation users of four carvings of the benchmark's training
  part (seeds 42-45, 10% held out per user), scored by EDLAE (ease l2 200, dropout 0.7, the
  strongest member) alone; the signal joins it in rank-normalised blends (1 - w) EDLAE + w signal.
- `--against blend` (stop 13): WeightedHybrid's default blend (`TUNED_BLEND`, nine members, its
  weights) on the carvings those weights were searched on (seeds 42-51, 10%) and on the holdout
  carvings the blend was chosen by (52-55); the signal is added with weight w on top of the
  blend's own weights (rank-normalised like the members; `filter` probes are 0/1 masks added
  as they are, with weight 1, which lifts every allowed item above every masked one since the
  blend's rank scores stay below 1). Members
  come from `hybrid_search.py`'s cache (fitted there when missing); a signal worth a full
  `hybrid_search.py` round must raise the holdout here. Results: printed, and merged into
  `results/hybrid-member-probes.json` / `.md`.

Each line prints mean NDCG@10 and the paired per-user difference to the baseline with its
standard error.

    python benchmarks/hybrid_member_probes.py --probe period      # popularity in the user's active period
    python benchmarks/hybrid_member_probes.py --probe sequence    # items adjacent in users' histories
    python benchmarks/hybrid_member_probes.py --probe confidence  # rating-weighted input
    python benchmarks/hybrid_member_probes.py --probe user-ease   # User-EDLAE grid
    # stop 13, against the whole default blend:
    python benchmarks/hybrid_member_probes.py --against blend --probe graph-filter   # GF-CF
    python benchmarks/hybrid_member_probes.py --against blend --probe demographics   # EASE + user attributes
    python benchmarks/hybrid_member_probes.py --against blend --probe page-mates     # co-rated in the same minutes
    python benchmarks/hybrid_member_probes.py --against blend --probe liked          # EASE on ratings >= 4
    python benchmarks/hybrid_member_probes.py --against blend --probe availability   # not yet rated at the user's time
    python benchmarks/hybrid_member_probes.py --against blend --probe zoo            # LightFM (side features), BPR
    python benchmarks/hybrid_member_probes.py --against blend --probe tuned-vae      # Mult-VAE, ML100K-tuned
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_models import LOADERS, RESULTS_DIR, SHARED
from serendip.data.dataset import Dataset
from serendip.evaluation import random_split, validation_split
from serendip.evaluation.metrics import hit_matrix, ndcg
from serendip.models.base import top_k
from serendip.models.hybrid._members import normalise
from serendip.models.hybrid._weighted import TUNED_BLEND
from serendip.models.linear._ease import _inverse_gram
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


def _history_neighbours(
    train: Dataset, max_offset: int, max_seconds: float = np.inf
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Item pairs (a, b) that one user rated at most `max_offset` positions and `max_seconds`
    apart in their time-ordered history, one (a, b) block per offset, with its offset."""
    it = train.interactions
    order = np.lexsort((it.item, it.timestamp, it.user))
    u, i, t = it.user[order], it.item[order], it.timestamp[order]
    firsts, seconds, offsets = [], [], []
    for off in range(1, max_offset + 1):
        near = u[off:] == u[:-off]
        if np.isfinite(max_seconds):
            near &= t[off:] - t[:-off] <= max_seconds
        if not near.any():
            break  # sorted by time within each user: no pair further apart is nearer
        firsts.append(i[:-off][near])
        seconds.append(i[off:][near])
        offsets.append(off)
    return firsts, seconds, offsets


def _symmetric(
    firsts: list[np.ndarray], seconds: list[np.ndarray], weights: list[float], n: int
) -> sp.csr_matrix:
    """The (n, n) item graph with each pair block in both directions at its weight."""
    rows = np.concatenate(firsts + seconds)
    cols = np.concatenate(seconds + firsts)
    vals = np.concatenate([np.full(len(a), w) for a, w in zip(firsts, weights, strict=True)] * 2)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def sequence_adjacency(train: Dataset, users: np.ndarray, window: int, decay: float) -> np.ndarray:
    """Items within `window` positions of each other in users' time-ordered histories,
    weighted decay^(distance - 1), degree-normalised; scored from the user's history."""
    firsts, seconds, offsets = _history_neighbours(train, window)
    adj = _symmetric(firsts, seconds, [decay ** (off - 1) for off in offsets], train.n_items)
    deg = np.asarray(train.seen().sum(0)).ravel() + 1
    adj = sp.diags(1 / np.sqrt(deg)) @ adj @ sp.diags(1 / np.sqrt(deg))
    return np.asarray((train.seen()[users] @ adj).todense(), dtype=np.float32)


def _binary(train: Dataset) -> sp.csr_matrix:
    """The binary history matrix in float64 (Dataset.seen is binary)."""
    return train.seen().astype(np.float64)


def _ease_weights(x: np.ndarray | sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's closed form (Steck 2019) on the columns of x, through the EASE model's own
    inverse: B = -P / diag(P), zero diagonal."""
    p = _inverse_gram(sp.csr_matrix(x, dtype=np.float64), l2, 0.0)
    b = p / -np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def graph_filter(train: Dataset, users: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """GF-CF (Shen et al. 2021): the normalised item-item filter R~'R~ (R~ = D_u^-1/2 R
    D_i^-1/2) plus alpha x the ideal low-pass filter of R~'s top-k right singular vectors."""
    from scipy.sparse.linalg import svds

    x = _binary(train)
    du, di = np.asarray(x.sum(1)).ravel(), np.asarray(x.sum(0)).ravel()
    du_is = np.divide(1.0, np.sqrt(du), out=np.zeros_like(du), where=du > 0)
    di_is = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di), where=di > 0)
    rt = sp.diags(du_is) @ x @ sp.diags(di_is)
    xu = x[users].toarray()
    out = xu @ (rt.T @ rt).toarray()
    if alpha:
        _, _, vt = svds(rt.tocsc(), k=k, random_state=0)
        out += alpha * ((xu * di_is) @ vt.T) @ (vt * np.sqrt(di))
    return out.astype(np.float32)


AGE_BANDS = (0, 18, 25, 35, 45, 50, 56, 999)


def _user_attribute_columns(train: Dataset) -> np.ndarray:
    """One-hot MovieLens user attributes: 7 age bands (the 1M dataset's), gender, occupation."""
    attrs = train.user_meta.attributes
    age = np.asarray(attrs["age"], dtype=np.float64)
    cols = [(age >= lo) & (age < hi) for lo, hi in itertools.pairwise(AGE_BANDS)]
    for key in ("gender", "occupation"):
        values = np.asarray(attrs[key]).astype(str)
        cols += [values == v for v in np.unique(values)]
    return np.stack(cols, axis=1).astype(np.float64)


def ease_with_attributes(train: Dataset, users: np.ndarray, beta: float, l2: float) -> np.ndarray:
    """EASE on [X, beta x user attributes] (attributes as extra input columns, so items are
    predicted from the history and the user's age band, gender and occupation)."""
    x = _binary(train).toarray()
    xa = np.hstack([x, beta * _user_attribute_columns(train)])
    return (xa[users] @ _ease_weights(xa, l2))[:, : x.shape[1]].astype(np.float32)


def page_mates(train: Dataset, users: np.ndarray, window_s: float) -> np.ndarray:
    """Items a user rated within `window_s` seconds of each other (MovieLens' rating pages: a
    user's ratings often share their second), degree-normalised, scored from the history."""
    firsts, seconds, offsets = _history_neighbours(train, 199, window_s)
    adj = _symmetric(firsts, seconds, [1.0] * len(offsets), train.n_items)
    deg = np.asarray(adj.sum(1)).ravel() + 1.0
    norm = sp.diags(1 / np.sqrt(deg))
    return np.asarray((_binary(train)[users] @ (norm @ adj @ norm)).todense(), dtype=np.float32)


def liked_ease(train: Dataset, users: np.ndarray, threshold: float, l2: float) -> np.ndarray:
    """EASE weights learned on the ratings >= threshold only (taste rather than exposure),
    applied to the whole history."""
    liked = train.filter_interactions(train.interactions.value >= threshold).seen()
    return np.asarray(_binary(train)[users] @ _ease_weights(liked, l2), dtype=np.float32)


def available(train: Dataset, users: np.ndarray, slack_days: float) -> np.ndarray:
    """1 where the item was first rated (in train) no later than `slack_days` after the user's
    last training event, else 0: items that did not yet circulate when the user was active."""
    it = train.interactions
    first = np.full(train.n_items, np.inf)
    np.minimum.at(first, it.item, it.timestamp)
    last = np.full(train.n_users, -np.inf)
    np.maximum.at(last, it.user, it.timestamp)
    gap_days = (first[None, :] - last[users][:, None]) / 86400.0
    return (gap_days <= slack_days).astype(np.float32)


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


Signal = Callable[[Dataset, np.ndarray], np.ndarray]


def _tuned(name: str) -> Signal:
    """Model `name` (CPU) with bench_models' ML100K tuning from model_params.json, read when the
    signal runs."""

    def signal(train: Dataset, users: np.ndarray) -> np.ndarray:
        params = json.loads((Path(__file__).parent / "model_params.json").read_text())
        return _model(name, {**params["ml-100k"].get(name, {}), "device": "cpu"})(train, users)

    return signal


#: Probes against the whole default blend: name -> (signals, weights w added on top of the
#: blend's, kind). "filter" signals are 0/1 masks (1 = may be recommended) added with weight 1.
BLEND_PROBES: dict[str, tuple[dict[str, Signal], tuple[float, ...], str]] = {
    "graph-filter": (
        {
            "gf-cf@a0": lambda tr, us: graph_filter(tr, us, 0.0, 0),
            "gf-cf@a0.3k64": lambda tr, us: graph_filter(tr, us, 0.3, 64),
        },
        (0.05, 0.1, 0.2, 0.3),
        "signal",
    ),
    "demographics": (
        {
            f"ease+attributes@b{b:g}": (lambda tr, us, b=b: ease_with_attributes(tr, us, b, 350.0))
            for b in (0.0, 1.0, 3.0)
        },
        (0.05, 0.1, 0.2, 0.3),
        "signal",
    ),
    "page-mates": (
        {f"page-mates@{w:g}s": (lambda tr, us, w=w: page_mates(tr, us, w)) for w in (0, 60, 600)},
        (0.05, 0.1, 0.2, 0.4),
        "signal",
    ),
    "liked": (
        {"liked-ease@4": lambda tr, us: liked_ease(tr, us, 4.0, 200.0)},
        (0.05, 0.1, 0.2, 0.4),
        "signal",
    ),
    "availability": (
        {f"available@{d:g}d": (lambda tr, us, d=d: available(tr, us, d)) for d in (0, 1, 7, 30)},
        (1.0,),
        "filter",
    ),
    "zoo": (
        {"lightfm": _model("lightfm", {}), "bpr": _model("bpr", {})},
        (0.05, 0.1, 0.2),
        "signal",
    ),
    # Mult-VAE with bench_models' ML100K tuning (model_params.json; CPU, 20 trials)
    "tuned-vae": (
        {"multvae@tuned": _tuned("multvae")},
        (0.05, 0.1, 0.2, 0.3),
        "signal",
    ),
}
BLEND_SEEDS = list(range(42, 52))
HOLDOUT_SEEDS = [52, 53, 54, 55]


def _paired(x: np.ndarray, base: np.ndarray) -> dict[str, float]:
    d = x - base
    return {
        "ndcg": float(x.mean()),
        "diff": float(d.mean()),
        "se": float(d.std() / np.sqrt(len(d))),
    }


def against_blend(probe: str, cache: Path) -> dict[str, Any]:
    """The probe's signals added to the default blend, on its search and holdout carvings."""
    from hybrid_search import Carvings

    signals, weights, kind = BLEND_PROBES[probe]
    members, w_blend = TUNED_BLEND["members"], TUNED_BLEND["weights"]
    split = random_split(LOADERS["ml-100k"](SHARED / "ml-100k"), seed=42, min_interactions=5)
    out: dict[str, Any] = {}
    for where, seeds in (("validation", BLEND_SEEDS), ("holdout", HOLDOUT_SEEDS)):
        carv = Carvings(split.train, seeds, list(members), cache, "ml-100k", 0.1)
        parts = carv.parts(TUNED_BLEND["normalization"], TUNED_BLEND["rank_constant"])
        base = sum(w_blend[k] * parts[k] for k in members)
        b0 = carv.per_user_ndcg(base)
        out.setdefault("blend", {})[where] = float(b0.mean())
        for name, fn in signals.items():
            blocks = []
            for sd in seeds:
                # keyed by the signal's name: a signal whose parameters change needs a new name
                path = cache / f"probe-ml-100k-{name}-s{sd}-v0.1.npy"
                if not path.exists():
                    v = validation_split(
                        split.train, "random", test_fraction=0.1, seed=sd, min_interactions=5
                    )
                    users = np.flatnonzero(np.diff(v.test.seen().indptr) > 0)
                    t0 = time.perf_counter()
                    np.save(path, np.asarray(fn(v.train, users), dtype=np.float32))
                    print(f"{name} carving {sd}: {time.perf_counter() - t0:.1f}s", flush=True)
                blocks.append(np.load(path))
            sig = np.vstack(blocks)
            row = out.setdefault(name, {"kind": kind})
            if kind == "signal":
                row.setdefault("alone", {})[where] = float(carv.per_user_ndcg(sig).mean())
                sig = normalise(sig, carv.seen, "rank", rank_constant=60.0).astype(np.float32)
            for w in weights:
                res = _paired(carv.per_user_ndcg(base + w * sig), b0)
                row.setdefault(f"w{w:g}", {})[where] = res
                print(
                    f"{where:10s} {name:24s} w {w:<5g} {res['ndcg']:.4f} "
                    f"diff {res['diff']:+.4f} se {res['se']:.4f}",
                    flush=True,
                )
    return out


def write_blend_report(log: dict[str, Any]) -> Path:
    lines = [
        "## Weighted-hybrid member probes against the default blend (ML100K, validation only)",
        "",
        "- Command: `python benchmarks/hybrid_member_probes.py --against blend --probe NAME` "
        "(names in the script's docstring); test never read.",
        f"- Baseline: WeightedHybrid's default blend (`{TUNED_BLEND['label']}`), scored on the "
        "10% carvings its weights were searched on (seeds 42-51, 'validation') and on the holdout "
        "carvings it was chosen by (52-55). A signal is rank-normalised and added with weight w "
        "on top of the blend's weights (the blend's weights sum to 1); a filter (0/1 mask) is "
        "added with weight 1. Differences are paired per user, +- their standard error.",
        "",
        "| probe | signal | alone val / holdout | w | val NDCG@10 (diff +- se) | holdout NDCG@10 (diff +- se) |",
        "|---|---|---|---:|---|---|",
    ]
    for probe, res in log.items():
        for name, row in res.items():
            if name == "blend":
                continue
            alone = row.get("alone", {})
            alone_s = f"{alone['validation']:.4f} / {alone['holdout']:.4f}" if alone else "(filter)"
            for key, cell in row.items():
                if not key.startswith("w"):
                    continue
                v, h = cell["validation"], cell["holdout"]
                lines.append(
                    f"| {probe} | {name} | {alone_s} | {key[1:]} | {v['ndcg']:.4f} "
                    f"({v['diff']:+.4f} +- {v['se']:.4f}) | {h['ndcg']:.4f} "
                    f"({h['diff']:+.4f} +- {h['se']:.4f}) |"
                )
    first = next(iter(log.values()))["blend"]
    lines += [
        "",
        f"Blend alone: validation {first['validation']:.4f}, holdout {first['holdout']:.4f}.",
        "",
    ]
    path = RESULTS_DIR / "hybrid-member-probes.md"
    path.write_text("\n".join(lines))
    return path


def _ndcg(scores: np.ndarray, seen: sp.csr_matrix, truth: sp.csr_matrix) -> np.ndarray:
    s = np.array(scores, dtype=np.float32)
    r, c = seen.nonzero()
    s[r, c] = -np.inf
    recs, _ = top_k(s, 10)
    return np.asarray(ndcg(hit_matrix(recs, truth), np.diff(truth.indptr)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probe", choices=sorted({*PROBES, *BLEND_PROBES}), required=True)
    ap.add_argument("--against", choices=("edlae", "blend"), default="edlae")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/serendip-hybrid-search"))
    args = ap.parse_args()
    if args.against == "blend":
        if args.probe not in BLEND_PROBES:
            raise SystemExit(f"--against blend probes: {', '.join(BLEND_PROBES)}")
        args.cache.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / "hybrid-member-probes.json"
        log = json.loads(out.read_text()) if out.exists() else {}
        log[args.probe] = against_blend(args.probe, args.cache)
        out.write_text(json.dumps(log, indent=2) + "\n")
        print(write_blend_report(log))
        return
    if args.probe not in PROBES:
        raise SystemExit(f"--against edlae probes: {', '.join(PROBES)}")
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
