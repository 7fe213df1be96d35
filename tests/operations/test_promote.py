"""From the study to production: a real (small) study's winner, fitted with its tuned
parameters, goes through the retraining gate and reaches a running server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serendip.data.loaders import load_platform
from serendip.errors import ConfigError
from serendip.evaluation.study.config import parse_config
from serendip.evaluation.study.runner import run_study
from serendip.operations.promote import promote_study_winner, study_winner
from serendip.operations.retrain import fit_candidate, retrain
from serendip.store import Store
from tests.operations.test_retrain import served_version, server
from tests.service.conftest import wait_ready


@pytest.fixture(scope="module")
def study_dir(tiny_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study on the tiny platform, temporal protocol: random, popularity and a tuned
    item-kNN."""
    config = parse_config(
        {
            "profile": "test",
            "quick": True,
            "latency_users": 5,
            "write_splits": False,
            "datasets": [{"name": "tiny", "source": "tiny", "protocols": ["temporal"]}],
            "models": [
                {"name": "random"},
                {"name": "popularity"},
                {"name": "item-knn", "trials": 3},
            ],
            "pipeline": {"enabled": False},
        }
    )
    out = tmp_path_factory.mktemp("study")
    ds = load_platform(tiny_db.parent / "platform")
    run_study(config, out, datasets={"tiny": ds}, leaderboard=False)
    return out


@pytest.fixture
def store(tiny_url: str) -> Iterator[Store]:
    s = Store.open(tiny_url)
    yield s
    s.close()


def _rows(study_dir: Path) -> list[dict[str, Any]]:
    rows = json.loads((study_dir / "results.json").read_text())["rows"]
    return [r for r in rows if r["status"] == "ok"]


def test_the_winner_is_the_best_of_the_study_metric(study_dir: Path) -> None:
    winner = study_winner(study_dir)
    rows = _rows(study_dir)
    best = max(rows, key=lambda r: r["metrics"]["ndcg@10"])
    assert (winner.dataset, winner.protocol, winner.metric) == ("tiny", "temporal", "ndcg@10")
    assert winner.model == best["model"] and winner.value == best["metrics"]["ndcg@10"]
    assert winner.params == best["params"]
    assert winner.runner_up is not None and winner.runner_up[1] <= winner.value


def test_the_study_winner_reaches_serving_through_the_gate(
    study_dir: Path, tiny_url: str, store: Store, tmp_path: Path
) -> None:
    seed = retrain(store, tmp_path, fit_candidate("random"))
    assert seed.version is not None
    user = store.events.since(0, 1)[0].user
    with server(tiny_url, tmp_path) as client:
        wait_ready(client)
        assert served_version(client, user, seed.version.version) == seed.version.version
        other = Store.open(tiny_url)  # `serendip promote --study DIR` in another process
        try:
            winner, report = promote_study_winner(other, tmp_path, study_dir)
        finally:
            other.close()
        assert report.promoted, report.reason
        assert report.version is not None and report.version.name == winner.model
        v = report.version.version
        assert served_version(client, user, v) == v

    lin = report.lineage
    assert lin["source"] == f"study:{study_dir.resolve()}"
    assert lin["origin"]["protocol"] == "temporal" and lin["origin"]["study_value"] == winner.value
    assert lin["parent"] == seed.version.version
    for key, value in winner.params.items():  # fitted with the study's tuned parameters
        assert lin["params"][key] == value
    manifest = json.loads((Path(report.version.path) / "manifest.json").read_text())
    assert manifest["tuning"]["source"] == "study"
    assert manifest["tuning"]["trials"] == winner.tuning["trials"]


def test_a_study_winner_worse_than_the_active_model_is_registered_not_served(
    study_dir: Path, store: Store, tmp_path: Path
) -> None:
    rows = _rows(study_dir)
    best = max(rows, key=lambda r: r["metrics"]["ndcg@10"])["model"]
    worst = min(rows, key=lambda r: r["metrics"]["ndcg@10"])["model"]
    active = retrain(store, tmp_path, fit_candidate(best))
    assert active.version is not None
    # a study that only measured the worst model: its winner is that model
    results = json.loads((study_dir / "results.json").read_text())
    results["rows"] = [r for r in results["rows"] if r["model"] == worst]
    narrow = tmp_path / "narrow-study"
    narrow.mkdir()
    (narrow / "results.json").write_text(json.dumps(results))
    winner, report = promote_study_winner(store, tmp_path, narrow)
    assert winner.model == worst
    assert not report.promoted and "below the active model's" in report.reason
    assert report.version is not None and report.version.status == "registered"
    assert report.version.lineage["gate"]["passed"] is False
    now = store.models.active()
    assert now is not None and now.version == active.version.version


def test_study_choice_errors_name_what_is_missing(study_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no results\.json"):
        study_winner(tmp_path)
    with pytest.raises(ConfigError, match="no finished protocol 'random'; it has: temporal"):
        study_winner(study_dir, protocol="random")
    with pytest.raises(ConfigError, match="no finished dataset 'ml-100k'"):
        study_winner(study_dir, dataset="ml-100k")
