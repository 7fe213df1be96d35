"""`serendip export`: the same document as the HTTP export, read from the store alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.service.schemas import UserExportPublic
from serendip.store import EventIn, Store, UserIn

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serendip.db'}"
    with Store.open(url) as store:
        store.users.upsert([UserIn("u001", ("jazz",), False, 1_700_000_000.0)])
        store.events.add_batch(
            [
                EventIn("e1", "u001", "i000", "like", 1_700_000_100.0),
                EventIn("e-other", "u002", "i001", "view", 1_700_000_200.0),
            ]
        )
        store.social.follow("u001", "u002", 1_700_000_010.0)
        store.social.follow("u003", "u001", 1_700_000_020.0)
    return url


def test_export_writes_the_users_data_as_the_api_shapes_it(db: str, tmp_path: Path) -> None:
    out = tmp_path / "out" / "u001.json"
    r = runner.invoke(app, ["export", "u001", "--db", db, "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    UserExportPublic.model_validate(doc)  # the HTTP route's response model
    assert set(doc) == set(UserExportPublic.model_fields)
    assert doc["profile"]["interests"] == ["jazz"]
    assert [(e["event_id"], e["event"], e["timestamp"]) for e in doc["events"]] == [
        ("e1", "like", 1_700_000_100.0)
    ]
    assert doc["following"] == [{"followee": "u002", "created_at": 1_700_000_010.0}]
    assert doc["followers"] == [{"follower": "u003", "created_at": 1_700_000_020.0}]
    assert "e-other" not in out.read_text()
    for section in ("exposures", "experiments"):
        assert doc[section]["records"] == [] and doc[section]["note"]
    assert doc["consent"]["records"][0]["stored"] is False  # the defaults
    assert doc["model_version"] is None
    assert doc["recommendations"]["items"] == []
    assert "--model-dir" in doc["recommendations"]["reason"]


def test_export_to_stdout_and_unknown_user(db: str) -> None:
    r = runner.invoke(app, ["export", "u003", "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["following"][0]["followee"] == "u001"
    r = runner.invoke(app, ["export", "nobody", "--db", db])
    assert r.exit_code == 1 and "nothing is stored about 'nobody'" in r.output


def test_missing_database_is_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    r = runner.invoke(app, ["export", "u001", "--db", f"sqlite:///{missing}"])
    assert r.exit_code == 1 and "no such database file" in r.output
    assert not missing.exists()


def test_model_dir_adds_explained_recommendations(
    db: str, tmp_path: Path, toy_platform: Any
) -> None:
    from serendip.models.registry import create_model

    model_dir = create_model("item-knn").fit(toy_platform).save(tmp_path / "knn")
    r = runner.invoke(
        app, ["export", "u001", "--db", db, "--model-dir", str(model_dir), "--k", "4"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model_version"] == "knn"
    recs = doc["recommendations"]
    assert recs["reason"] is None and len(recs["items"]) == 4
    assert all(it["explanation"] and it["explanation"].get("text") for it in recs["items"])
    assert "i000" not in [it["item"] for it in recs["items"]]  # seen through the stored event
