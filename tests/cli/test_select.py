"""`serendip select-blend`: the weighted hybrid's blend re-derived on a user's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.models.hybrid import WeightedHybrid

runner = CliRunner()

FAST = ["--members", "popularity,item-knn,user-knn", "--seeds", "1,2", "--trials", "10"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serendip.data.synthetic import generate_platform

    out = tmp_path_factory.mktemp("tiny") / "platform"
    generate_platform("tiny", seed=0, out=out)
    return out


def test_select_blend_prints_the_blend_and_writes_every_score(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "blend.json"
    result = runner.invoke(
        app, ["select-blend", str(tiny), *FAST, "--holdout-seeds", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(params["weights"]) == {"popularity", "item-knn", "user-knn"}
    assert params["normalization"] == "rank"  # the default blend's
    WeightedHybrid(params)  # a valid configuration, as `serendip fit --params` takes it
    doc = json.loads(out.read_text())
    assert doc["params"] == params
    assert doc["test_fraction"] == 0.2 and doc["seeds"] == [1, 2] and doc["holdout_seeds"] == [3]
    assert doc["validation_ndcg"] >= doc["equal_weights_ndcg"]
    assert doc["holdout_ndcg"] is not None
    assert "blend" in result.stderr and "equal weights" in result.stderr


def test_select_blend_on_all_the_data_without_holdout(tiny: Path) -> None:
    result = runner.invoke(
        app,
        [
            "select-blend",
            str(tiny),
            "--members",
            '{"popularity": {}, "item-knn@k20": {"k": 20}}',
            "--seeds",
            "1",
            "--holdout-seeds",
            "",
            "--test-fraction",
            "0",
            "--trials",
            "5",
            "--normalization",
            "minmax",
        ],
    )
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout.strip().splitlines()[-1])
    assert params["members"] == {"popularity": {}, "item-knn@k20": {"k": 20}}
    assert params["normalization"] == "minmax"
    assert "holdout" not in result.stderr.split("search:")[0]  # no holdout column


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--members", '{"ease": 3}'], "--members must map each member key"),
        (["--members", "{not json"], "--members is not valid JSON"),
        (["--members", "no-such-model"], "unknown model 'no-such-model'"),
        (["--seeds", "1,x"], "--seeds expects comma-separated integers"),
        (["--seeds", "1,2", "--holdout-seeds", "2"], "must differ from the search seeds"),
        (["--validation-fraction", "1.5"], "--validation-fraction must be in (0, 1)"),
    ],
)
def test_select_blend_mistakes_are_one_error_line(
    tiny: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["select-blend", str(tiny), *args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_select_blend_names_a_missing_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["select-blend", str(tmp_path / "nowhere"), *FAST])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
