"""`serendip erase`, `serendip consent`, `serendip purge`: one readable line each, exit 1 with
one `error:` line on bad input; after `erase` no table and no artifact file names the user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.experiments.assignment import assign
from serendip.models.registry import create_model
from serendip.privacy.pseudonym import Pseudonymizer
from serendip.service.privacy import files_naming
from serendip.store import EventIn, Store
from tests.conftest import make_toy_platform
from tests.service.test_erasure import tables_naming

runner = CliRunner()
WHO = "u007"


@pytest.fixture
def served(tmp_path: Path) -> tuple[str, Path]:
    """A store with the toy platform and an active popularity version under artifacts."""
    url = f"sqlite:///{tmp_path / 'serendip.db'}"
    artifacts = tmp_path / "artifacts"
    with Store.open(url) as store:
        store.import_dataset(make_toy_platform())
        directory = artifacts / "popularity-0"
        create_model("popularity").fit(store.to_dataset()).save(directory)
        store.models.activate(store.models.register("popularity", str(directory)).version)
    return url, artifacts


def test_erase_removes_the_user_from_the_store_the_model_and_the_artifacts(
    served: tuple[str, Path],
) -> None:
    url, artifacts = served
    r = runner.invoke(app, ["erase", WHO, "--db", url, "--artifacts", str(artifacts)])
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()
    assert "\n" not in line and line.startswith(f"erased '{WHO}'") and "refitted" in line
    with Store.open(url) as store:
        assert tables_naming(store, WHO) == []
        active = store.models.active()
        assert active is not None and active.version == "v2"
        assert store.models.get("v1").status == "failed"  # type: ignore[union-attr]
    assert files_naming(artifacts, [WHO]) == []
    r = runner.invoke(app, ["erase", "nobody", "--db", url, "--no-refit"])
    assert r.exit_code == 0 and "nothing stored" in r.stdout


def test_consent_shows_and_sets_the_switches(served: tuple[str, Path]) -> None:
    url, artifacts = served
    r = runner.invoke(app, ["consent", "u001", "--db", url, "--artifacts", str(artifacts)])
    assert r.exit_code == 0
    assert r.stdout.strip() == ("'u001': personalization on, activity for others on, private off")
    args = ["--activity-for-others", "off", "--private", "on", "--artifacts", str(artifacts)]
    r = runner.invoke(app, ["consent", "u001", "--db", url, *args])
    assert r.exit_code == 0, r.output
    assert "activity for others off, private on" in r.stdout
    with Store.open(url) as store:
        assert store.consents.withheld_activity() == {"u001"}
    r = runner.invoke(app, ["consent", "u001", "--db", url, "--personalization", "maybe"])
    assert r.exit_code != 0


def test_purge_deletes_old_events(served: tuple[str, Path]) -> None:
    url, _ = served
    r = runner.invoke(app, ["purge", "--db", url, "--older-than-days", "1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("purged ") and "older than 1 days" in r.stdout
    with Store.open(url) as store:
        assert store.events.count() == 0  # the toy platform's events are from 2023


def test_bad_input_is_one_error_line(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, _ = served
    r = runner.invoke(app, ["purge", "--db", url, "--older-than-days", "0"])
    assert r.exit_code == 1 and r.stderr.strip().startswith("error:") and "positive" in r.stderr
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    r = runner.invoke(app, ["erase", WHO, "--db", missing, "--artifacts", str(tmp_path)])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "no such database" in r.stderr


def test_export_takes_the_raw_id_and_names_running_experiments_assignment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "a-pseudonym-secret-of-some-length"
    monkeypatch.setenv("SERENDIP_PSEUDONYM_SECRET", secret)
    stored = Pseudonymizer(secret.encode()).user("alice")
    url = f"sqlite:///{tmp_path / 'serendip.db'}"
    spec = {"variants": [{"name": "control"}, {"name": "treatment"}], "salt": "s1"}
    with Store.open(url) as store:
        store.events.add_batch([EventIn("e1", stored, "i1", "like", 1_700_000_000.0)])
        store.experiments.create("exp-a", "ab", spec)
        store.experiments.start("exp-a")
    r = runner.invoke(app, ["export", "alice", "--db", url])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["user"] == "alice" and [e["event_id"] for e in doc["events"]] == ["e1"]
    want = assign(stored, "s1", [("control", 0.5), ("treatment", 0.5)])
    assert [(x["experiment"], x["variant"]) for x in doc["experiments"]["records"]] == [
        ("exp-a", want)
    ]
