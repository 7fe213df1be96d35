"""The Parquet export: the same `Dataset` comes back, and what is not an export is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from serendip.data.dataset import MatrixConfig
from serendip.errors import DataError
from serendip.spark import export_dataset, open_export, read_export
from tests.conftest import make_toy_platform


def test_export_round_trips_the_dataset(tmp_path: Path) -> None:
    ds = make_toy_platform()
    export = export_dataset(ds, tmp_path / "export")
    assert (export.n_users, export.n_items, export.n_interactions) == (
        ds.n_users,
        ds.n_items,
        ds.n_interactions,
    )
    back = read_export(tmp_path / "export")
    assert back.users.ids.tolist() == ds.users.ids.tolist()
    assert back.items.ids.tolist() == ds.items.ids.tolist()
    for config in (
        MatrixConfig(binary=True),
        MatrixConfig(),
        MatrixConfig(value_transform="log1p"),
    ):
        np.testing.assert_array_equal(back.matrix(config).toarray(), ds.matrix(config).toarray())
    np.testing.assert_array_equal(back.interactions.timestamp, ds.interactions.timestamp)
    np.testing.assert_array_equal(back.interactions.event, ds.interactions.event)
    assert back.item_meta.category.tolist() == ds.item_meta.category.tolist()
    assert back.item_meta.tags.tolist() == ds.item_meta.tags.tolist()
    assert back.user_meta.interests.tolist() == ds.user_meta.interests.tolist()
    assert len(back.social) == len(ds.social)


def test_export_indices_are_the_vocabularies(tmp_path: Path) -> None:
    ds = make_toy_platform()
    export = export_dataset(ds, tmp_path / "export")
    inter = pq.read_table(export.path("interactions")).to_pydict()
    assert ds.users.indices(np.array(inter["user"])).tolist() == inter["user_idx"]
    assert ds.items.indices(np.array(inter["item"])).tolist() == inter["item_idx"]
    # the weight column is the event's default weight (view 1, like 4, share 6)
    weights = dict(zip(inter["event"], inter["weight"], strict=True))
    assert weights == {"view": 1.0, "like": 4.0, "share": 6.0}


def test_not_an_export_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no export\.json"):
        open_export(tmp_path)
    export = export_dataset(make_toy_platform(), tmp_path / "export")
    (export.directory / "social.parquet").unlink()
    with pytest.raises(DataError, match=r"lacks social\.parquet"):
        open_export(export.directory)
    manifest = export.directory / "export.json"
    manifest.write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(DataError, match="expected format 'serendip-parquet-export'"):
        open_export(export.directory)
