"""`serendip split`: files written, parameters recorded, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from tests.conftest import shared_data

runner = CliRunner()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        items = rng.choice(40, size=int(rng.integers(3, 15)), replace=False)
        for i in items:
            rows.append((f"u{u}", f"i{i}", int(1_600_000_000 + rng.integers(0, 10_000_000))))
    path = tmp_path / "interactions.csv"
    pd.DataFrame(rows, columns=["user", "item", "timestamp"]).to_csv(path, index=False)
    return path


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"user": str, "item": str})


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("random", ["--test-fraction", "0.25", "--seed", "3"]),
        ("temporal", ["--test-fraction", "0.3"]),
        ("leave-last", ["--n", "2"]),
        ("cold-items", ["--test-fraction", "0.2"]),
    ],
)
def test_split_writes_disjoint_train_and_test(
    source: Path, tmp_path: Path, method: str, extra: list[str]
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["split", str(source), "--method", method, *extra, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"{method} split" in result.stdout
    train, test = read(out / "train.csv"), read(out / "test.csv")
    summary = json.loads((out / "split.json").read_text())
    assert summary["kind"] == method
    assert summary["files"] == {"train": "train.csv", "test": "test.csv"}
    assert summary["train"]["interactions"] == len(train) and summary["test"][
        "interactions"
    ] == len(test)
    assert len(train) + len(test) + summary["params"]["n_excluded"] == len(read(source))
    assert len(test) > 0
    assert not set(zip(train.user, train.item, strict=True)) & set(
        zip(test.user, test.item, strict=True)
    )
    assert list(train.columns) == ["user", "item", "timestamp"]
    assert train.timestamp.dtype == np.int64  # epoch seconds stay integers
    if method == "leave-last":
        assert summary["params"]["n"] == 2
        assert (test.groupby("user").size() == 2).all()
    if method == "random":
        assert summary["params"] == {
            "test_fraction": 0.25,
            "seed": 3,
            "min_interactions": 5,
            "n_excluded": 0,
        }


def test_split_is_deterministic_under_a_seed(source: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        runner.invoke(app, ["split", str(source), "--seed", "5", "--out", str(tmp_path / name)])
    assert (tmp_path / "a" / "test.csv").read_text() == (tmp_path / "b" / "test.csv").read_text()


def test_cold_users_writes_fold_in(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cold"
    result = runner.invoke(
        app,
        [
            "split",
            str(source),
            "--method",
            "cold-users",
            "--test-fraction",
            "0.2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    train, test, fold = read(out / "train.csv"), read(out / "test.csv"), read(out / "fold_in.csv")
    assert set(test.user) == set(fold.user)
    assert not set(test.user) & set(train.user)
    assert json.loads((out / "split.json").read_text())["params"]["n_cold_users"] == 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "random", "--n", "2"], "--n applies only to --method leave-last"),
        (["--method", "leave-last", "--test-fraction", "0.2"], "--test-fraction does not apply"),
        (["--method", "random", "--test-fraction", "1.5"], "test_fraction must be between 0 and 1"),
        (
            ["--method", "temporal", "--cut", "whenever"],
            "neither epoch seconds nor an ISO 8601 time",
        ),
    ],
)
def test_bad_options_are_one_error_line(
    source: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = runner.invoke(app, ["split", str(source), *extra, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_split_then_evaluate_round_trip(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert (
        runner.invoke(
            app, ["split", str(source), "--method", "cold-items", "--out", str(out)]
        ).exit_code
        == 0
    )
    test = read(out / "test.csv")
    # Recommend each test user's own test items, best first: a perfect list.
    recs = test.assign(rank=test.groupby("user").cumcount() + 1)[["user", "item", "rank"]]
    recs.to_csv(tmp_path / "recs.csv", index=False)
    result = runner.invoke(
        app,
        ["evaluate", "--train", str(out / "train.csv"), "--test", str(out / "test.csv"),
         "--recs", str(tmp_path / "recs.csv"), "--k", "50", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["recall@50"] == 1.0 and metrics["ndcg@50"] == pytest.approx(1.0)


@pytest.mark.realdata
def test_split_movielens_directory(tmp_path: Path) -> None:
    pytest.importorskip("serendip.data.loaders", reason="needs serendip.data.loaders.load_source")
    from serendip.data import loaders

    if not hasattr(loaders, "load_source"):
        pytest.skip("serendip.data.loaders.load_source is not available yet")
    path = shared_data("ml-100k")
    out = tmp_path / "ml"
    result = runner.invoke(app, ["split", str(path), "--method", "leave-last", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "split.json").read_text())
    assert summary["test"] == {"interactions": 943, "users": 943, "items": summary["test"]["items"]}
    assert summary["train"]["interactions"] == 100_000 - 943


def test_cold_users_evaluate_with_fold_in(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cu"
    assert (
        runner.invoke(
            app, ["split", str(source), "--method", "cold-users", "--out", str(out)]
        ).exit_code
        == 0
    )
    fold = read(out / "fold_in.csv")
    test = read(out / "test.csv")
    # Lists made of the fold-in items first (already seen), then the test items.
    both = pd.concat([fold, test])
    recs = both.assign(rank=both.groupby("user").cumcount() + 1)[["user", "item", "rank"]]
    recs.to_csv(tmp_path / "recs.csv", index=False)
    base = ["evaluate", "--train", str(out / "train.csv"), "--test", str(out / "test.csv"),
            "--recs", str(tmp_path / "recs.csv"), "--k", "100", "--json"]  # fmt: skip
    plain = json.loads(runner.invoke(app, base).stdout)
    with_fold = json.loads(
        runner.invoke(app, [*base, "--fold-in", str(out / "fold_in.csv")]).stdout
    )
    assert plain["diagnostics"]["listed_seen_items_share"] == 0.0
    assert with_fold["diagnostics"]["listed_seen_items_share"] == pytest.approx(
        len(fold) / len(both)
    )
    assert with_fold["metrics"]["recall@100"] == plain["metrics"]["recall@100"] == 1.0
