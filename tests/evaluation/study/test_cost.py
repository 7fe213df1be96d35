"""Cost measures: fit time and memory, latency, size on disk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from serendip.evaluation.study.cost import (
    COST_NOTES,
    directory_size_mb,
    measure_fit,
    measure_latency,
    model_size_mb,
)


def test_measure_fit_sees_memory_the_fit_holds() -> None:
    def fit() -> np.ndarray:
        a = np.ones(64 << 17)  # 64 MiB of float64, touched
        time.sleep(0.05)
        return a

    result, cost = measure_fit(fit)
    assert result.shape == (64 << 17,)
    assert cost.seconds >= 0.05
    assert 50 <= cost.peak_memory_mb <= 200
    assert cost.samples >= 2
    assert "RSS" in COST_NOTES["peak_memory_mb"]


def test_measure_fit_of_nothing_is_small() -> None:
    _, cost = measure_fit(lambda: None)
    assert 0 <= cost.peak_memory_mb < 20


def test_measure_latency_batch_and_single() -> None:
    calls: list[tuple[list[str], dict[str, object]]] = []

    def recommend(users: list[str], k: int, **kw: object) -> str:
        calls.append((list(users), kw))
        time.sleep(0.001 * len(users))
        return "lists"

    users = [f"u{i}" for i in range(30)]
    context = {"u3": ["i1"]}
    out, cost = measure_latency(recommend, users, 10, context=context, sample=10, seed=1)
    assert out == "lists"
    assert cost.n_batch_users == 30 and cost.n_single_users == 10
    assert len(calls) == 11 and calls[0][0] == users
    assert all(len(c[0]) == 1 for c in calls[1:])
    # one-at-a-time calls carry only that user's context
    for (u,), kw in calls[1:]:
        assert kw == ({"context": {u: ["i1"]}} if u == "u3" else {})
    assert cost.batch_ms_per_user >= 0.9
    assert 0.9 <= cost.single_p50_ms <= cost.single_p99_ms
    # seeded sample: same users again
    calls.clear()
    measure_latency(recommend, users, 10, sample=10, seed=1)
    first = [c[0][0] for c in calls[1:]]
    calls.clear()
    measure_latency(recommend, users, 10, sample=10, seed=1)
    assert [c[0][0] for c in calls[1:]] == first


def test_model_size_counts_what_save_writes(tmp_path: Path) -> None:
    def save(directory: Path) -> Path:
        directory.mkdir(parents=True)
        (directory / "a.npy").write_bytes(b"x" * (1 << 20))
        (directory / "sub").mkdir()
        (directory / "sub" / "b.json").write_bytes(b"y" * (1 << 19))
        return directory

    assert abs(model_size_mb(save) - 1.5) < 1e-9
    save(tmp_path / "m")
    assert abs(directory_size_mb(tmp_path / "m") - 1.5) < 1e-9
