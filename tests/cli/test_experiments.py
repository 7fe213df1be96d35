"""`serendip experiments`: the lifecycle against a store, readable results, the sample-size
calculator, and one `error:` line with exit 1 for each mistake."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.experiments.assignment import assign
from serendip.store import EventIn, Store
from serendip.store.operations import ExposureIn

runner = CliRunner()

SPEC = {
    "kind": "ab",
    "variants": [
        {"name": "control", "share": 0.5, "model_version": "v1"},
        {"name": "treatment", "share": 0.5},
    ],
    "primary_metric": "click",
    "salt": "cli-salt",
}


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serendip.db'}"
    with Store.open(url) as store:
        store.models.register("item-knn", str(tmp_path / "m1"), version="v1")
    return url


def _run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["experiments", *args])
    return r.exit_code, r.output


def test_create_list_start_stop_and_results(db: str, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(SPEC))
    code, out = _run("create", "exp1", "--db", db, "--spec", str(spec_file))
    assert code == 0, out
    assert "created ab experiment 'exp1' (draft): control 50% [v1], treatment 50% [active]" in out
    code, out = _run("list", "--db", db)
    assert code == 0 and out.startswith("exp1  ab  draft") and out.count("\n") == 1
    code, out = _run("start", "exp1", "--db", db)
    assert code == 0 and "started 'exp1'" in out
    # traffic a server would log: treatment users click more
    rng = np.random.default_rng(1)
    shares = [("control", 0.5), ("treatment", 0.5)]
    with Store.open(db) as store:
        users = [f"u{j}" for j in range(400)]
        variants = {u: assign(u, "cli-salt", shares) for u in users}
        store.exposures.add_many(
            [ExposureIn(f"r{u}", u, "user", ("a", "b"), None, "exp1", variants[u]) for u in users]
        )
        now = time.time()
        p = {"control": 0.2, "treatment": 0.5}
        store.events.add_batch(
            [
                EventIn(f"e{u}", u, "a", "click", now + 0.001)
                for u in users
                if rng.random() < p[variants[u]]
            ]
        )
    code, out = _run("stop", "exp1", "--db", db)
    assert code == 0 and "stopped 'exp1'" in out
    code, out = _run("results", "exp1", "--db", db)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("conversion on click")
    assert lines[1].startswith("  control: ") and "rate" in lines[1] and "[" in lines[1]
    assert "treatment: " in lines[2] and "lift +" in lines[2] and "p=" in lines[2]
    assert any(line.startswith("sample ratio: ok") for line in lines)
    assert lines[-1].startswith("decision: treatment beats control")
    code, out = _run("results", "exp1", "--db", db, "--json")
    report = json.loads(out)
    assert sum(v["users"] for v in report["variants"]) == 400 and "srm" in report
    code, out = _run("list", "--db", db, "--status", "stopped")
    assert code == 0 and "exp1  ab  stopped" in out


def test_mistakes_print_one_line_and_exit_1(db: str, tmp_path: Path) -> None:
    cases = [
        (["create", "e", "--db", db, "--spec", "{not json"], "not JSON"),
        (["create", "e", "--db", db, "--spec", str(tmp_path / "none.json")], "no such file"),
        (["create", "e", "--db", db, "--spec", '{"variants": [{"name": "a"}]}'], "two variants"),
        (
            ["create", "e", "--db", db, "--spec", json.dumps({**SPEC, "salt": ""})],
            "salt",
        ),
        (
            [
                "create",
                "e",
                "--db",
                db,
                "--spec",
                '{"variants": [{"name": "a"}, {"name": "b", "model_version": "v9"}]}',
            ],
            "no model version 'v9'",
        ),
        (["start", "nope", "--db", db], "no experiment 'nope'"),
        (["stop", "nope", "--db", db], "no experiment 'nope'"),
        (["list", "--db", db, "--status", "paused"], "--status paused"),
        (["list", "--db", f"sqlite:///{tmp_path / 'missing.db'}"], "no such database file"),
        (["sample-size", "--baseline", "1.5", "--lift", "0.05"], "baseline_rate"),
    ]
    for args, reason in cases:
        code, out = _run(*args)
        assert code == 1, (args, out)
        assert out.startswith("error: ") and reason in out and out.count("\n") == 1, (args, out)
    assert _run("create", "e", "--db", db, "--spec", json.dumps(SPEC))[0] == 0
    code, out = _run("stop", "e", "--db", db)
    assert code == 1 and "is draft" in out
    code, out = _run("results", "e", "--db", db)
    assert code == 1 and "has not started" in out
    assert _run("start", "e", "--db", db)[0] == 0
    assert _run("create", "f", "--db", db, "--spec", json.dumps(SPEC))[0] == 0
    code, out = _run("start", "f", "--db", db)
    assert code == 1 and "'e' is running" in out


def test_sample_size() -> None:
    code, out = _run("sample-size", "--baseline", "0.1", "--lift", "0.05")
    assert code == 0, out
    assert out.startswith("57,756 users in the control, 115,512 in all")
