"""`serendip models`, `serendip fit` and `serendip recommend` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from serendip.cli.main import app
from serendip.models.registry import MODELS

runner = CliRunner()


def _fit(files: dict[str, Path], out: Path, *args: str) -> Result:
    """`serendip fit` on the fixture's interactions into `out`, with extra `args`."""
    return runner.invoke(
        app, ["fit", "--interactions", str(files["interactions"]), *args, "--out", str(out)]
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """30 users x 25 items with optional columns holding empty cells, plus an items file."""
    rng = np.random.default_rng(0)
    lines = ["user,item,timestamp,event,value"]
    for u in range(30):
        for i in rng.choice(25, size=int(rng.integers(4, 10)), replace=False):
            ts = "" if rng.random() < 0.2 else str(1_700_000_000 + int(rng.integers(0, 10**6)))
            event = "" if rng.random() < 0.3 else "like"
            value = "" if rng.random() < 0.5 else str(int(rng.integers(1, 50)))
            lines.append(f"u{u},i{i},{ts},{event},{value}")
    inter = tmp_path / "interactions.csv"
    inter.write_text("\n".join(lines) + "\n")
    items = tmp_path / "items.csv"
    pd.DataFrame({"item": [f"i{i}" for i in range(25)], "category": "c"}).to_csv(items, index=False)
    users = tmp_path / "users.csv"
    users.write_text("user\nu1\nu2\nstranger\n")
    return {"interactions": inter, "items": items, "users": users}


def test_models_lists_every_registered_model_on_one_line() -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(MODELS)
    by_name = {line.split()[0]: line for line in lines}
    assert set(by_name) == set(MODELS)
    assert MODELS["ease"].description in by_name["ease"]
    assert "unavailable" not in by_name["item-knn"]


def test_fit_then_recommend_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = _fit(
        files,
        out,
        "--items",
        str(files["items"]),
        "--model",
        "item-knn",
        "--params",
        '{"k": 10, "confidence": "log1p"}',
    )
    assert result.exit_code == 0, result.output
    assert "fitted item-knn" in result.stdout and (out / "manifest.json").is_file()

    recs_path = tmp_path / "recs.csv"
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-dir",
            str(out),
            "--users",
            str(files["users"]),
            "--k",
            "3",
            "--out",
            str(recs_path),
        ],
    )
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(recs_path, dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    assert recs.groupby("user")["rank"].apply(list).to_dict() == {
        "u1": [1, 2, 3],
        "u2": [1, 2, 3],
        "stranger": [1, 2, 3],
    }
    # training items are excluded
    train = pd.read_csv(files["interactions"], dtype=str)
    seen = set(zip(train.user, train.item, strict=True))
    assert not any((u, i) in seen for u, i in zip(recs.user, recs.item, strict=True))
    assert "1 unknown" in result.stdout

    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-dir",
            str(out),
            "--users",
            "all",
            "--k",
            "2",
            "--out",
            str(recs_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(recs_path)["user"].nunique() == 30


def test_bad_params_are_one_line_errors(files: dict[str, Path], tmp_path: Path) -> None:
    base = ["fit", "--interactions", str(files["interactions"]), "--out", str(tmp_path / "m")]
    cases = [
        (["--model", "item-knn", "--params", '{"neighbours": 5}'], "valid:"),
        (["--model", "item-knn", "--params", "{k: 5"], "not valid JSON"),
        (["--model", "item-knn", "--params", "[5]"], "JSON object"),
        (["--model", "item-knn", "--params", '{"k": -1}'], "k:"),
        (["--model", "no-such-model"], "unknown model"),
        (["--params", '{"k": 5}'], "--model"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 1, (extra, result.output)
        err = result.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, err
        assert "Traceback" not in result.output


def test_model_beyond_its_capacity_says_so(files: dict[str, Path], tmp_path: Path) -> None:
    result = _fit(files, tmp_path / "m", "--model", "ease", "--params", '{"max_items": 10}')
    assert result.exit_code == 1
    assert "max_items=10" in result.stderr and "item-knn" in result.stderr
    assert not (tmp_path / "m").exists()


def test_config_toml(files: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "ease.toml"
    config.write_text('model = "ease"\n\n[params]\nl2 = 25.0\ndropout = 0.1\n')
    out = tmp_path / "m"
    result = _fit(files, out, "--config", str(config))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "ease"
    assert manifest["config"]["l2"] == 25.0 and manifest["config"]["dropout"] == 0.1

    flat = tmp_path / "flat.toml"
    flat.write_text("k = 7\nsimilarity = 'jaccard'\n")
    result = _fit(files, out, "--model", "user-knn", "--config", str(flat))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "user-knn" and manifest["config"]["k"] == 7

    bad = tmp_path / "bad.toml"
    bad.write_text("k = \n")
    result = _fit(files, out, "--model", "item-knn", "--config", str(bad))
    assert result.exit_code == 1 and "invalid TOML" in result.stderr
    result = _fit(files, out, "--model", "item-knn", "--config", str(flat), "--params", "{}")
    assert result.exit_code == 1 and "not both" in result.stderr


def test_recommend_users_file_errors(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m"
    fitted = _fit(files, out, "--model", "popularity")
    assert fitted.exit_code == 0, fitted.output
    no_header = tmp_path / "ids.csv"
    no_header.write_text("id\nu1\n")
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-dir",
            str(out),
            "--users",
            str(no_header),
            "--out",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 1 and "'user' header" in result.stderr
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-dir",
            str(tmp_path / "nothing"),
            "--users",
            "all",
            "--out",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 1 and "error:" in result.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The `tiny` synthetic preset's interactions, and a copy without timestamps."""
    from serendip.data.synthetic import generate_platform

    base = tmp_path_factory.mktemp("tiny")
    out = generate_platform("tiny", seed=0, out=base / "platform")
    untimed = base / "untimed.csv"
    pd.read_parquet(out / "interactions.parquet")[["user", "item"]].drop_duplicates().to_csv(
        untimed, index=False
    )
    return {"interactions": out / "interactions.parquet", "untimed": untimed}


def test_fit_tune_records_the_search_in_the_manifest(tiny: dict[str, Path], tmp_path: Path) -> None:
    from serendip.models.base import Choice, FloatRange, IntRange
    from serendip.models.registry import get_model_class

    out = tmp_path / "model"
    result = _fit(tiny, out, "--model", "item-knn", "--tune", "--trials", "3")
    assert result.exit_code == 0, result.output
    assert "tuned item-knn: 3 trials" in result.stdout and "temporal" in result.stdout
    assert "best params" in result.stdout and "fitted item-knn" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    tuning = manifest["tuning"]
    assert tuning["protocol"] == "temporal"  # the default when timestamps exist
    assert tuning["trials"] == 3 and tuning["metric"] == "ndcg@10 on validation"
    assert tuning["best_validation"] >= tuning["default_validation"] >= 0
    assert tuning["seconds"] > 0
    for key, dim in get_model_class("item-knn").search_space.items():
        value = tuning["best_params"][key]
        if isinstance(dim, (IntRange, FloatRange)):
            assert dim.low <= value <= dim.high
        elif isinstance(dim, Choice):
            assert value in dim.options
        assert manifest["config"][key] == value  # the saved model is the chosen one


def test_fit_tune_pipeline_says_which_collaborative_source_it_chose(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    from serendip.pipeline.recommender import PipelineRecommender

    quick = PipelineRecommender.quick_params
    params = {f"ranker.{k}": v for k, v in quick["ranker"].items()}
    params |= {f"sources.{n}.quota": s["quota"] for n, s in quick["sources"].items()}
    out = tmp_path / "model"
    result = _fit(
        tiny, out, "--model", "pipeline", "--tune", "--trials", "1", "--params",
        json.dumps(params),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if "source stage" in ln)
    source = json.loads((out / "manifest.json").read_text())["tuning"]["collaborative_source"]
    assert f"{source['chosen']}, best alone (ials 0." in line and "item-knn 0." in line


def test_fit_tune_without_timestamps_carves_at_random(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "fit",
            "--interactions",
            str(tiny["untimed"]),
            "--model",
            "ease",
            "--tune",
            "--trials",
            "3",
            "--params",
            '{"l2": 40}',
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    tuning = json.loads((out / "manifest.json").read_text())["tuning"]
    assert tuning["protocol"] == "random"
    assert tuning["fixed_params"] == {"l2": 40} == tuning["best_params"]
    assert tuning["trials"] == 1  # l2 fixed: nothing left to search


@pytest.mark.parametrize(
    ("which", "args", "message"),
    [
        ("interactions", ["--tune", "--trials", "3", "--budget", "1"], "not both"),
        ("untimed", ["--tune", "--protocol", "temporal"], "needs interaction timestamps"),
        ("interactions", ["--tune", "--protocol", "weekly"], "unknown protocol 'weekly'"),
        ("interactions", ["--trials", "3"], "--trials only apply with --tune"),
    ],
)
def test_fit_tune_bad_combinations_are_one_line_errors(
    tiny: dict[str, Path], tmp_path: Path, which: str, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app,
        [
            "fit",
            "--interactions",
            str(tiny[which]),
            "--model",
            "popularity",
            *args,
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (tmp_path / "m").exists()


def test_fit_prints_how_personal_the_lists_are(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = _fit(tiny, out, "--model", "popularity")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("lists@10"))
    assert "most-listed item" in line and "coverage" in line and "novelty" in line
    lists = json.loads((out / "manifest.json").read_text())["lists"]
    assert lists["k"] == 10 and lists["users"] > 0 and lists["top_item"] in line
    assert lists["top_item_share@10"] > 0.5  # popularity: one list for everyone
    assert f"{lists['top_item_share@10']:.1%}" in line
    assert 0 < lists["coverage@10"] < 0.1 and lists["novelty@10"] > 0
    assert "warning       one item is in" in result.stdout  # the same list for everyone
    personal = _fit(tiny, tmp_path / "knn", "--model", "item-knn")
    assert "one item is in" not in personal.stdout


def test_fit_pipeline_says_when_the_fallback_takes_over(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    from serendip.pipeline.recommender import PipelineRecommender

    quick = dict(PipelineRecommender.quick_params)
    # a ranker that cannot learn (no leaf may hold its rows): every tree is a constant
    params = {**quick, "ranker": {**quick["ranker"], "min_child_samples": 10**6}}
    out = tmp_path / "model"
    result = _fit(tiny, out, "--model", "pipeline", "--params", json.dumps(params))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    known = manifest["meta"]["fallback"]["segments"]["known"]
    assert known["choice"] != "ranker"
    assert known["ndcg"][known["choice"]] > known["ndcg"]["ranker"]
    lines = result.stdout.splitlines()
    row = next(x for x in lines if x.strip().startswith("known users"))
    assert f"FALLBACK to {known['choice']}" in row
    assert f"{known['ndcg']['ranker']:.4f}" in row
    validation = next(x for x in lines if x.strip().startswith("validation"))
    assert f"ndcg@10 {known['ndcg'][known['choice']]:.4f}" in validation
    assert any(x.strip().startswith("lists@10") for x in lines)
    assert manifest["lists"]["users"] > 0
