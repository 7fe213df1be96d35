"""Every model of the zoo fits, recommends, explains and loads through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.models.registry import MODELS, get_model_class
from tests.conftest import make_toy_platform

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ds = make_toy_platform(seed=5)
    d = tmp_path_factory.mktemp("toy")
    paths = {
        "interactions": d / "interactions.csv",
        "items": d / "items.csv",
        "social": d / "social.csv",
        "users": d / "users.csv",
    }
    ds.interactions_frame().to_csv(paths["interactions"], index=False)
    ds.items_frame().to_csv(paths["items"], index=False)
    ds.social_frame().drop(columns=["created_at"]).to_csv(paths["social"], index=False)
    pd.DataFrame({"user": ["u001", "u002", "newcomer"]}).to_csv(paths["users"], index=False)
    return paths


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_recommend_explain_through_the_cli(
    name: str, toy_files: dict[str, Path], tmp_path: Path
) -> None:
    params = json.dumps(dict(get_model_class(name).quick_params))
    model_dir = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "fit",
            "--interactions", str(toy_files["interactions"]),
            "--items", str(toy_files["items"]),
            "--social", str(toy_files["social"]),
            "--model", name,
            "--params", params,
            "--out", str(model_dir),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (model_dir / "manifest.json").is_file()

    out = tmp_path / "recs.csv"
    res = runner.invoke(
        app,
        ["recommend", "--model-dir", str(model_dir), "--users", str(toy_files["users"]),
         "--k", "5", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(out, dtype={"user": str, "item": str})
    assert set(recs.user) == {"u001", "u002", "newcomer"}  # the newcomer takes the cold path
    assert recs.groupby("user").size().max() <= 5

    top = recs[recs.user == "u001"].sort_values("rank").item.iloc[0]
    res = runner.invoke(
        app, ["explain", "--model-dir", str(model_dir), "--user", "u001", "--item", top, "--json"]
    )
    assert res.exit_code == 0, res.output
    exp = json.loads(res.output)[0]
    assert exp["item"] == top and exp["model"] == name


def test_explain_unknown_item_is_one_line_error(toy_files: dict[str, Path], tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    res = runner.invoke(
        app,
        ["fit", "--interactions", str(toy_files["interactions"]), "--model", "item-knn",
         "--out", str(model_dir)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["explain", "--model-dir", str(model_dir), "--user", "u001", "--item", "nope"]
    )
    assert res.exit_code == 1
    assert "unknown item 'nope'" in res.output
    res = runner.invoke(
        app, ["similar", "--model-dir", str(model_dir), "--item", "i001", "--k", "3"]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "item,similar,rank,score" and len(lines) == 4
