"""Paired significance against the best baseline: bootstrap CI, Wilcoxon, Holm/Bonferroni/BH."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wilcoxon

from serendip.errors import ConfigError
from serendip.evaluation.study.significance import (
    adjust_p_values,
    align_on_users,
    compare_to_baseline,
    pick_baseline,
    pick_baselines,
)

KEYS = {
    "model",
    "baseline",
    "metric",
    "n_users",
    "mean_model",
    "mean_baseline",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
}


def _ndcg_like(rng: np.random.Generator, n: int, hit_rate: float) -> np.ndarray:
    """Zero-inflated per-user NDCG: most users score 0, the others somewhere in (0, 1]."""
    hit = rng.random(n) < hit_rate
    return np.where(hit, rng.uniform(0.1, 1.0, n), 0.0)


@pytest.fixture
def cell() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 600
    pop = _ndcg_like(rng, n, 0.3)
    noise = rng.normal(0.0, 0.05, n)
    return {
        "popularity": pop,
        "same": pop.copy(),  # identical to the baseline
        "jitter": pop + noise - noise.mean(),  # symmetric noise around the baseline, no gain
        "ease": np.clip(pop + np.where(rng.random(n) < 0.5, 0.25, 0.0), 0, 1),  # clearly better
        "worse": pop * 0.5,
    }


def test_output_shape_and_order(cell: dict[str, np.ndarray]) -> None:
    rows = compare_to_baseline(cell, "popularity", n_boot=500)
    assert [r["model"] for r in rows] == ["same", "jitter", "ease", "worse"]
    for r in rows:
        assert set(r) == KEYS
        assert r["baseline"] == "popularity" and r["metric"] == "ndcg@10"
        assert r["n_users"] == 600
        assert r["mean_diff"] == pytest.approx(r["mean_model"] - r["mean_baseline"])
        assert r["ci_low"] <= r["mean_diff"] <= r["ci_high"]
        assert 0.0 <= r["p_value"] <= r["p_adjusted"] <= 1.0
        assert isinstance(r["significant"], bool)


def test_model_equal_to_baseline_is_not_significant(cell: dict[str, np.ndarray]) -> None:
    rows = {r["model"]: r for r in compare_to_baseline(cell, "popularity", n_boot=500)}
    same = rows["same"]
    assert same["p_value"] == 1.0 and same["p_adjusted"] == 1.0
    assert same["ci_low"] == same["ci_high"] == same["mean_diff"] == 0.0
    assert not same["significant"]
    jitter = rows["jitter"]
    assert jitter["ci_low"] < 0 < jitter["ci_high"]
    assert not jitter["significant"]


def test_clearly_better_and_worse_models_are_significant(cell: dict[str, np.ndarray]) -> None:
    rows = {r["model"]: r for r in compare_to_baseline(cell, "popularity", n_boot=500)}
    ease = rows["ease"]
    assert ease["significant"] and ease["p_adjusted"] < 1e-6
    assert 0 < ease["ci_low"] < ease["mean_diff"] < ease["ci_high"]
    assert ease["mean_diff"] == pytest.approx(0.125, abs=0.03)  # half the users gain 0.25
    worse = rows["worse"]
    assert worse["significant"] and worse["ci_high"] < 0


def test_p_value_is_scipy_wilcoxon_and_ci_covers_the_bootstrap(
    cell: dict[str, np.ndarray],
) -> None:
    rows = {r["model"]: r for r in compare_to_baseline(cell, "popularity", n_boot=2000)}
    diff = cell["jitter"] - cell["popularity"]
    assert rows["jitter"]["p_value"] == pytest.approx(wilcoxon(diff, zero_method="wilcox").pvalue)
    # The percentile interval is close to the normal approximation of the mean's spread.
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    width = rows["jitter"]["ci_high"] - rows["jitter"]["ci_low"]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_deterministic_by_seed(cell: dict[str, np.ndarray]) -> None:
    a = compare_to_baseline(cell, "popularity", n_boot=300, seed=3)
    b = compare_to_baseline(cell, "popularity", n_boot=300, seed=3)
    c = compare_to_baseline(cell, "popularity", n_boot=300, seed=4)
    assert a == b
    assert [r["ci_low"] for r in a] != [r["ci_low"] for r in c]
    # p-values do not depend on the bootstrap
    assert [r["p_value"] for r in a] == [r["p_value"] for r in c]


def test_bootstrap_chunking_does_not_change_results(
    cell: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import serendip.evaluation.study.significance as sig

    whole = compare_to_baseline(cell, "popularity", n_boot=64, seed=1)
    monkeypatch.setattr(sig, "_CHUNK_ELEMENTS", 600 * 5)  # 5 resamples per chunk
    chunked = compare_to_baseline(cell, "popularity", n_boot=64, seed=1)
    for a, b in zip(chunked, whole, strict=True):
        assert a["ci_low"] == pytest.approx(b["ci_low"], rel=1e-12, abs=1e-15)
        assert a["ci_high"] == pytest.approx(b["ci_high"], rel=1e-12, abs=1e-15)
        assert a["p_adjusted"] == b["p_adjusted"]


def test_holm_against_a_hand_computation() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005 (x4) = 0.02, 0.01 (x3) = 0.03, 0.03 (x2) = 0.06, 0.04 (x1) = 0.04 -> max so far 0.06
    np.testing.assert_allclose(adjust_p_values(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjust_p_values(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    # BH: sorted 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04 (min from the top)
    np.testing.assert_allclose(adjust_p_values(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust_p_values(p, "none"), p)
    np.testing.assert_allclose(adjust_p_values([0.6, 0.9], "holm"), [1.0, 1.0])
    assert adjust_p_values([], "holm").shape == (0,)


def test_correction_is_applied_across_models(cell: dict[str, np.ndarray]) -> None:
    raw = compare_to_baseline(cell, "popularity", n_boot=100, correction="none")
    holm = compare_to_baseline(cell, "popularity", n_boot=100)
    expected = adjust_p_values([r["p_value"] for r in raw], "holm")
    np.testing.assert_allclose([r["p_adjusted"] for r in holm], expected)
    assert all(r["p_adjusted"] == r["p_value"] for r in raw)
    bonf = compare_to_baseline(cell, "popularity", n_boot=100, correction="bonferroni")
    assert all(b["p_adjusted"] >= h["p_adjusted"] for b, h in zip(bonf, holm, strict=True))


def test_significance_follows_alpha() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    model = base + rng.normal(0.02, 0.1, 200)
    (r,) = compare_to_baseline({"b": base, "m": model}, "b", n_boot=200)
    assert r["significant"] == (r["p_adjusted"] < 0.05)
    (strict,) = compare_to_baseline({"b": base, "m": model}, "b", n_boot=200, alpha=r["p_value"])
    assert not strict["significant"]  # p < alpha is strict


def test_only_the_baseline_gives_nothing() -> None:
    assert compare_to_baseline({"pop": np.ones(5)}, "pop") == []


def test_bad_input_is_a_config_error() -> None:
    ok = {"pop": np.zeros(10), "ease": np.ones(10)}
    with pytest.raises(ConfigError, match=r"aligned on the same users.*ease has 9"):
        compare_to_baseline({"pop": np.zeros(10), "ease": np.ones(9)}, "pop")
    with pytest.raises(ConfigError, match="baseline 'nope'"):
        compare_to_baseline(ok, "nope")
    with pytest.raises(ConfigError, match="correction"):
        compare_to_baseline(ok, "pop", correction="sidak")
    with pytest.raises(ConfigError, match="n_boot"):
        compare_to_baseline(ok, "pop", n_boot=0)
    with pytest.raises(ConfigError, match="alpha"):
        compare_to_baseline(ok, "pop", alpha=1.5)
    with pytest.raises(ConfigError, match="NaN"):
        compare_to_baseline({"pop": np.zeros(3), "ease": np.array([0.1, np.nan, 0])}, "pop")
    with pytest.raises(ConfigError, match="1-D"):
        compare_to_baseline({"pop": np.zeros((2, 2))}, "pop")
    with pytest.raises(ConfigError, match="no users"):
        compare_to_baseline({"pop": np.zeros(0), "ease": np.zeros(0)}, "pop")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        adjust_p_values([0.5, 1.2])


def test_align_on_users_reorders_and_refuses_different_users() -> None:
    users, values = align_on_users(
        {
            "pop": (["u1", "u2", "u3"], np.array([0.1, 0.2, 0.3])),
            "ease": (np.array(["u3", "u1", "u2"]), np.array([3.0, 1.0, 2.0])),
        }
    )
    assert users.tolist() == ["u1", "u2", "u3"]
    assert values["pop"].tolist() == [0.1, 0.2, 0.3]
    assert values["ease"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match="not on the same users"):
        align_on_users({"a": (["u1", "u2"], np.zeros(2)), "b": (["u1", "u9"], np.zeros(2))})
    with pytest.raises(ConfigError, match="one value per user"):
        align_on_users({"a": (["u1", "u2"], np.zeros(3))})


def _row(dataset: str, protocol: str, model: str, ndcg: float | None, **kw: str) -> dict:
    row = {
        "dataset": dataset,
        "protocol": protocol,
        "model": model,
        "kind": kw.get("kind", "model"),
        "family": kw.get("family", "baselines"),
        "status": kw.get("status", "ok"),
        "metrics": {} if ndcg is None else {"ndcg@10": ndcg},
    }
    return row


def test_pick_baseline_chooses_the_best_ok_baseline() -> None:
    rows = [
        _row("ml", "random", "random", 0.01),
        _row("ml", "random", "popularity", 0.10),
        _row("ml", "random", "popularity-failed", 0.50, status="failed"),
        _row("ml", "random", "ease", 0.40, family="linear"),
        _row("ml", "random", "implicit-als", 0.45, kind="peer", family="peer"),
        _row("ml", "random", "no-metric", None),
    ]
    assert pick_baseline(rows) == "popularity"
    assert pick_baseline([r for r in rows if r["family"] != "baselines"]) is None
    assert pick_baseline([]) is None
    tie = [_row("ml", "random", "b", 0.1), _row("ml", "random", "a", 0.1)]
    assert pick_baseline(tie) == "a"


def test_pick_baselines_per_cell_and_pick_baseline_refuses_mixed_cells() -> None:
    rows = [
        _row("ml", "random", "popularity", 0.10),
        _row("ml", "random", "random", 0.01),
        _row("ml", "cold-users", "random", 0.02),
        _row("ml", "cold-users", "popularity", 0.01),
        _row("lastfm", "random", "ease", 0.3, family="linear"),
    ]
    assert pick_baselines(rows) == {("ml", "random"): "popularity", ("ml", "cold-users"): "random"}
    with pytest.raises(ConfigError, match="one dataset x protocol"):
        pick_baseline(rows)
