"""`serendip retrain`, `rollback`, `schedule`, `monitors`, `promote`: exit codes, one readable
line, mistakes as one `error:` line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.operations.config import MONITORS
from serendip.store import Store
from tests.conftest import make_toy_platform
from tests.operations.traffic import (
    DAY,
    T,
    add_events,
    build_tiny_store,
    item_weights,
    platform_store,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def db(tiny_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "store.db"
    shutil.copyfile(tiny_template, path)
    return f"sqlite:///{path}"


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_retrain_promotes_keeps_and_rollback_goes_back(db: str, tmp_path: Path) -> None:
    art = str(tmp_path / "artifacts")
    code, out = _run("retrain", "--db", db, "--artifacts", art, "--model", "random")
    assert code == 0 and "promoted v1 (random), now active: no active model" in out
    code, out = _run("retrain", "--db", db, "--artifacts", art, "--model", "item-knn")
    assert code == 0 and "promoted v2 (item-knn)" in out and "better" in out
    code, out = _run("retrain", "--db", db, "--artifacts", art, "--model", "random")
    assert code == 3
    assert "kept the active model v2: candidate ndcg@10" in out and "below" in out
    code, out = _run("retrain", "--db", db, "--artifacts", art)  # the active recipe again
    assert code == 0 and "(item-knn)" in out
    code, out = _run("rollback", "--db", db)
    assert code == 0 and "rolled back: v2 (item-knn) is active again (was v3 (item-knn))" in out
    with Store.open(db) as store:
        active = store.models.active()
        assert active is not None and active.version == "v2"


def test_schedule_runs_retrain_and_the_monitors(db: str, tmp_path: Path) -> None:
    code, out = _run(
        "schedule", "--db", db, "--artifacts", str(tmp_path), "--model", "popularity",
        "--every", "1s", "--times", "1",
    )  # fmt: skip
    assert code == 0, out
    assert "round 1" in out and "promoted v1 (popularity)" in out
    assert "monitors" in out and "next round" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retrain", "--db", "sqlite:///nowhere.db", "--artifacts", "a"], "no such database"),
        (["retrain", "--artifacts", "a", "--model", "nope"], "unknown model 'nope'"),
        (["retrain", "--artifacts", "a", "--model", "popularity", "--params", "{x"], "--params"),
        (["retrain", "--artifacts", "a"], "no model version is active"),
        (["retrain", "--artifacts", "a", "--model", "random", "--tolerance", "2"], "tolerance"),
        (["rollback"], "no earlier model version"),
        (["schedule", "--artifacts", "a", "--every", "5x"], "--every '5x'"),
        (["promote", "--study", "nostudy", "--artifacts", "a"], "no results.json"),
        (["monitors", "--end", "yesterday"], "--end 'yesterday'"),
    ],
)
def test_mistakes_are_one_error_line(db: str, args: list[str], message: str) -> None:
    if "--db" not in args:
        args = [args[0], "--db", db, *args[1:]]
    code, out = _run(*args)
    assert code == 1, out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out


def _traffic_db(tmp_path: Path, *, shifted: bool) -> str:
    url = f"sqlite:///{tmp_path / 'traffic.db'}"
    with Store.open(url) as store:
        ds = make_toy_platform()
        platform_store(store, ds)
        add_events(store, ds, item_weights(ds), T - 8 * DAY, T - DAY, 2800, seed=1, prefix="r")
        w = item_weights(ds, shifted=shifted)
        add_events(store, ds, w, T - DAY, T, 400, seed=2, prefix="c")
    return url


def test_monitors_exit_1_when_drift_fires(tmp_path: Path) -> None:
    code, out = _run("monitors", "--db", _traffic_db(tmp_path, shifted=True), "--end", str(T))
    assert code == 1
    assert "monitor(s) out of bounds: " in out and "category_psi = " in out


def test_monitors_exit_0_on_unchanged_traffic_and_print_json(tmp_path: Path) -> None:
    db = _traffic_db(tmp_path, shifted=False)
    code, out = _run("monitors", "--db", db, "--end", "2027-01-15T08:00:00")
    assert code == 0 and "monitors within bounds" in out
    code, out = _run("monitors", "--db", db, "--end", str(T), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["out_of_bounds"] == [] and len(doc["monitors"]) == len(MONITORS)
