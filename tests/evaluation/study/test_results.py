"""results.json / results.csv: flat CSV columns, JSON-safe values, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from serendip.evaluation.study.results import (
    atomic_write_text,
    flatten_row,
    read_results,
    rows_frame,
    write_results,
)

ROW = {
    "dataset": "toy",
    "protocol": "random",
    "model": "ease",
    "kind": "model",
    "family": "linear",
    "status": "ok",
    "error": "",
    "params": {"l2": 10.0, "nested": {"a": 1}},
    "tuning": {"trials": 2, "best_validation": np.float32(0.5)},
    "metrics": {"ndcg@10": 0.25, "novelty@10": float("nan")},
    "slices": {"cold": {"ndcg@10": 0.1}},
    "cost": {"fit_seconds": 1.5, "model_size_mb": None},
    "n_test_users": np.int64(7),
    "seed": 42,
    "code_version": "0.1.0+gabc",
}


def test_flatten_row() -> None:
    flat = flatten_row(ROW)
    assert flat["metrics.ndcg@10"] == 0.25
    assert flat["metrics.novelty@10"] is None  # NaN -> None (empty in CSV)
    assert flat["slices.cold.ndcg@10"] == 0.1
    assert flat["cost.fit_seconds"] == 1.5
    assert flat["tuning.best_validation"] == 0.5
    assert json.loads(flat["params"]) == {"l2": 10.0, "nested": {"a": 1}}
    assert flat["n_test_users"] == 7 and isinstance(flat["n_test_users"], int)


def test_write_results(tmp_path: Path) -> None:
    failed = {**ROW, "model": "nmf", "status": "failed", "error": "boom", "metrics": {}}
    results = {"study": {"profile": "t"}, "rows": [ROW, failed], "significance": []}
    json_path, csv_path = write_results(results, tmp_path / "out")
    back = read_results(tmp_path / "out")
    assert back["rows"][0]["metrics"]["novelty@10"] is None
    assert back["rows"][1]["error"] == "boom"
    frame = pd.read_csv(csv_path)
    assert list(frame.columns[:6]) == ["dataset", "protocol", "model", "kind", "family", "status"]
    assert frame.loc[0, "metrics.ndcg@10"] == 0.25
    assert frame["metrics.ndcg@10"].isna().tolist() == [False, True]
    assert frame.loc[1, "status"] == "failed"
    assert json_path.name == "results.json"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.csv", "results.json"]


def test_rows_frame_empty() -> None:
    assert rows_frame([]).empty


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "d" / "f.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]
