"""Last.fm 2K, validation only: RecVAE's encoder width (the MovieLens-tuned 144 / 47 units
against the paper's 600 / 200) and the paper's own gamma / dropout, on bench_models' validation
split (carved from the benchmark's train part; test never read). Chose the Last.fm entry of
`benchmarks/model_params.json` for RecVAE (hidden 600, latent 200). Prints one line per setting;
a run takes about 12 minutes on 2 CPU cores. Stop 12's run: 0.1385 (defaults), 0.1604 (600 /
200), 0.1309 (600 / 200 with gamma 0.005, dropout 0.5).

    python benchmarks/recvae_width_probe.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench_models import LOADERS, SHARED
from serendip.evaluation import random_split, validation_split
from serendip.evaluation.metrics import hit_matrix, ndcg
from serendip.models.base import top_k
from serendip.models.registry import create_model

SETTINGS: list[dict[str, Any]] = [
    {},  # the class defaults (bench_models' MovieLens tuning)
    {"hidden": 600, "latent": 200},
    {"hidden": 600, "latent": 200, "gamma": 0.005, "dropout": 0.5},
]


def main() -> None:
    ds = LOADERS["lastfm-2k"](SHARED / "lastfm-2k")
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    val = validation_split(split.train, "random", test_fraction=0.2, seed=42, min_interactions=5)
    truth = val.test.seen()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    rows, cols = val.train.seen()[users].nonzero()
    for params in SETTINGS:
        t0 = time.perf_counter()
        model = create_model("recvae", {"device": "cpu", **params}).fit(val.train)
        scores = model._score_warm(users)
        scores[rows, cols] = -np.inf
        recs, _ = top_k(scores, 10)
        value = np.mean(ndcg(hit_matrix(recs, truth[users]), np.diff(truth[users].indptr)))
        print(f"recvae {params}: validation NDCG@10 {value:.4f}, best epoch "
              f"{model.best_epoch_}, {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
