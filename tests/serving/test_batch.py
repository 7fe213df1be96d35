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


@pytest.mark.parametrize("k", [7, 60])
def test_lists_from_precomputed_candidates_equal_a_full_recompute(
    toy_platform: Dataset, tmp_path: Path, k: int
) -> None:
    from serendip.pipeline.serving import serving_model
    from serendip.serving.precompute import build_ranked_lists, fingerprint

    model = create_model("pipeline", None).fit(toy_platform)
    directory = tmp_path / "m"
    model.save(directory)
    users = [*toy_platform.users.ids[:40].tolist(), "nobody", toy_platform.users.ids[3]]
    full, _, _ = batch.recommend_batch(directory, users, k, workers=1)
    lists = build_ranked_lists(serving_model(model), fingerprint=fingerprint(directory))
    assert lists is not None
    lists.save(directory)
    calls: list[int] = []
    loaded = batch._open(directory, serving_model)
    assert loaded.lists is not None
    original = loaded.model.recommend

    def counting(ids, k):  # type: ignore[no-untyped-def]
        calls.append(len(ids))
        return original(ids, k)

    object.__setattr__(loaded.model, "recommend", counting)
    fast = batch._recommend(loaded, [str(u) for u in users], k)
    assert calls == [1]  # only the unknown user took the full pipeline
    pd.testing.assert_frame_equal(fast, full)
    via_api, _, _ = batch.recommend_batch(directory, users, k, workers=1, adapter=serving_model)
    pd.testing.assert_frame_equal(via_api, full)


def test_lists_of_another_fit_are_not_used(toy_platform: Dataset, tmp_path: Path) -> None:
    from serendip.pipeline.serving import serving_model
    from serendip.serving.precompute import build_ranked_lists

    model = create_model("pipeline", None).fit(toy_platform)
    model.save(tmp_path / "m")
    stale = build_ranked_lists(serving_model(model), fingerprint="another fit")
    assert stale is not None
    stale.save(tmp_path / "m")
    assert batch._open(tmp_path / "m", serving_model).lists is None
