"""The pipeline benchmark's validation rules: statistical ties and the choice of settings."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pipeline.py"


@cache
def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_pipeline", module)
    spec.loader.exec_module(module)
    return module


def test_ties_are_models_within_two_standard_errors_of_the_best() -> None:
    rng = np.random.default_rng(0)
    best = rng.binomial(1, 0.05, 4000).astype(float)  # sparse hits: a noisy mean
    noisy = best.copy()
    noisy[np.flatnonzero(best)[:3]] = 0.0  # 3 hits fewer: well within the noise
    worse = np.zeros(4000)  # every hit lost: far outside it
    ties = _bench()._ties({"best": best, "noisy": noisy, "worse": worse}, "best")
    assert ties == ["best", "noisy"]


def _setting(ndcg_at_10: float, oon_hit_rate: float, **met: bool) -> dict[str, Any]:
    return {"ndcg@10": ndcg_at_10, "oon_hit_rate@10": oon_hit_rate, "floors_met": met}


def test_choice_puts_the_ndcg_floor_first_then_spends_its_margin_on_discovery() -> None:
    key = _bench()._choice_key
    floors = {"ndcg": True, "coverage": True, "novelty": True}
    sharp = _setting(0.20, 0.30, **floors, oon=False)
    discovering = _setting(0.19, 0.35, **floors, oon=False)
    assert max([sharp, discovering], key=key) is discovering
    # once the out-of-network floor is met (or absent), the best NDCG wins
    met_sharp = _setting(0.20, 0.50, **floors, oon=True)
    met_discovering = _setting(0.19, 0.60, **floors, oon=True)
    assert max([met_sharp, met_discovering], key=key) is met_sharp
    plain = _setting(0.20, 0.0, **floors)
    assert max([plain, _setting(0.19, 0.0, **floors)], key=key) is plain
    # among settings at the NDCG floor, more floors met first
    no_coverage = _setting(0.30, 0.60, ndcg=True, coverage=False, novelty=True, oon=True)
    assert max([no_coverage, met_discovering], key=key) is met_discovering
    # the NDCG floor before any other: short of it, NDCG alone counts
    below = _setting(0.10, 0.60, ndcg=False, coverage=True, novelty=True, oon=True)
    assert max([below, no_coverage], key=key) is no_coverage
    closest = _setting(0.15, 0.20, ndcg=False, coverage=False, novelty=False, oon=False)
    assert max([below, closest], key=key) is closest


def test_the_ndcg_floor_is_taken_at_the_best_models_upper_bound() -> None:
    bench = _bench()
    ref = {"ndcg@10": 0.10, "ndcg@10_upper": 0.12, "coverage@10": 0.1, "novelty@10": 1.0}
    at_mean = {"ndcg@10": 0.11, "coverage@10": 0.2, "novelty@10": 2.0, "oon_hit_rate@10": None}
    assert not bench._floors_met(at_mean, ref, social=False)["ndcg"]
    above = {**at_mean, "ndcg@10": 0.125}
    assert bench._floors_met(above, ref, social=False) == {
        "ndcg": True,
        "coverage": True,
        "novelty": True,
    }
    # sample std sqrt(1/3) over sqrt(4) users
    assert bench._standard_error(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(0.2886751)
