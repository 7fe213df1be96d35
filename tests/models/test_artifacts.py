"""`atomic_directory`: a reader sees the old directory or the complete new one, never half."""

from __future__ import annotations

from pathlib import Path

import pytest

from serendip.models.artifacts import atomic_directory


def test_atomic_directory_replaces_an_existing_one_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "split"
    with atomic_directory(target) as tmp:
        assert tmp.is_dir() and tmp.parent == target.parent and not target.exists()
        (tmp / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("second")
        assert (target / "a.txt").read_text() == "first"  # the old one until the block ends
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in target.parent.iterdir()] == ["split"]


def test_atomic_directory_keeps_the_old_one_on_error(tmp_path: Path) -> None:
    target = tmp_path / "split"
    target.mkdir()
    (target / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="half way"), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("new, half written")
        raise RuntimeError("half way")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


def test_manifest_sections_are_written_and_may_not_replace_the_artifacts_own(
    tmp_path: Path,
) -> None:
    import json

    from serendip.models.base import Recommender
    from serendip.models.baselines import Popularity
    from tests.conftest import make_toy_platform

    model = Popularity().fit(make_toy_platform())
    out = model.save(tmp_path / "m", sections={"tuning": {"trials": 3}})
    assert json.loads((out / "manifest.json").read_text())["tuning"] == {"trials": 3}
    assert isinstance(Recommender.load(out), Popularity)
    with pytest.raises(ValueError, match="config"):
        model.save(tmp_path / "n", sections={"config": {}})
    assert not (tmp_path / "n").exists()  # refused before anything is written


@pytest.mark.parametrize("name", ["ials", "multvae"])
def test_large_dense_arrays_load_memory_mapped_and_serve_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Processes on one machine share a memory-mapped model; a read-only map must serve exactly
    # what the loaded copy served (and nothing may write into it).
    import numpy as np

    import serendip.models.artifacts as artifacts
    from serendip.models.base import Recommender
    from serendip.models.registry import create_model
    from tests.conftest import make_toy_platform

    ds = make_toy_platform()
    model = create_model(name, dict(create_model(name).quick_params)).fit(ds)
    path = model.save(tmp_path / name)
    users = ds.users.ids[:20]
    copied = Recommender.load(path).recommend(users, 10)
    monkeypatch.setattr(artifacts, "MMAP_MIN_BYTES", 0)
    assert any(isinstance(a, np.memmap) for a in artifacts.read_artifact(path).arrays.values())
    mapped = Recommender.load(path).recommend(users, 10)
    assert [mapped.item_ids(r) for r in range(20)] == [copied.item_ids(r) for r in range(20)]
