"""Batch recommendations shared among processes give the lists one process gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.models.registry import create_model
from serendip.serving import batch
from serendip.serving.precompute import AUTO_WORKERS_FROM, auto_workers


def test_auto_workers_rule() -> None:
    assert auto_workers(10, 3) == 3  # asked for
    assert auto_workers(AUTO_WORKERS_FROM - 1) == 1
    assert 1 <= auto_workers(AUTO_WORKERS_FROM) <= 4


def test_processes_give_the_lists_of_one_process(
    toy_platform: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_model("item-knn", {"k": 20}).fit(toy_platform).save(tmp_path / "m")
    one, n, unknown = batch.recommend_batch(tmp_path / "m", None, 7, workers=1)
    assert n == toy_platform.n_users and unknown == 0
    monkeypatch.setattr(batch, "_CHUNK", 25)  # several chunks for the pool
    seen: list[int] = []
    users = [*toy_platform.users.ids[:60].tolist(), "nobody"]
    two, n2, unknown2 = batch.recommend_batch(
        tmp_path / "m", users, 7, workers=2, progress=lambda d, t: seen.append(d)
    )
    assert (n2, unknown2) == (61, 1) and seen[-1] == 61
    expect = pd.concat(
        [one[one.user.isin(users[:60])], two[two.user == "nobody"]], ignore_index=True
    )
    pd.testing.assert_frame_equal(two.reset_index(drop=True), expect.reset_index(drop=True))
