"""The study's privacy and responsibility outputs: the bias and discovery audit of every cell,
and the differential-privacy sweep (its cells, results, csv and leaderboard section)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.evaluation.audit import AUDIT_DESCRIPTIONS
from serendip.evaluation.study.config import DP_CLIP_ONLY_EPSILON, StudyConfig, parse_config
from serendip.evaluation.study.leaderboard import write_leaderboard
from serendip.evaluation.study.runner import plan_dp_cells, run_study


def _config(**over: Any) -> StudyConfig:
    data: dict[str, Any] = {
        "profile": "test",
        "quick": True,
        "latency_users": 3,
        "write_splits": False,
        "datasets": [{"name": "toy", "source": "toy", "protocols": ["random", "cold-items"]}],
        "models": [{"name": "popularity"}],
        "pipeline": {"enabled": False},
        "dp": {
            "enabled": True,
            "epsilons": [1.0, 10.0],
            "models": [
                {"name": "popularity"},
                {"name": "item-knn", "params": {"weighting": "none", "dp_max_per_user": 20}},
            ],
        },
    }
    data.update(over)
    return parse_config(data)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, toy_platform: Dataset) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study")
    results = run_study(_config(), out, datasets={"toy": toy_platform}, leaderboard=False)
    return out, results


def test_every_cell_carries_the_audit(study: tuple[Path, dict[str, Any]]) -> None:
    _, results = study
    for row in results["rows"]:
        audit = row["audit"]
        assert set(AUDIT_DESCRIPTIONS) <= set(audit), row["model"]
        assert audit["k"] == 10 and audit["n_users"] == row["n_test_users"]
        assert 0.0 <= audit["tail_share"] <= 1.0
        assert set(audit["groups"]) == {"q1", "q2", "q3", "q4"}
    # the toy platform has a follow graph: the filter-bubble measure is there
    random = next(r for r in results["rows"] if r["protocol"] == "random")
    assert random["audit"]["oon_share"] == pytest.approx(random["metrics"]["oon_share@10"])


def test_the_sweep_runs_each_model_at_each_point_on_the_warm_protocol(
    study: tuple[Path, dict[str, Any]],
) -> None:
    out, results = study
    sweep = results["dp_sweep"]
    points = [(r["model"], r["dp"]["point"]) for r in sweep["rows"]]
    assert points == [
        (m, p) for m in ("popularity", "item-knn") for p in ("none", "clip", "1", "10")
    ]
    assert all(r["protocol"] == "random" and r["kind"] == "dp" for r in sweep["rows"])
    assert all(r["status"] == "ok" for r in sweep["rows"]), [r["error"] for r in sweep["rows"]]
    by = {(r["model"], r["dp"]["point"]): r for r in sweep["rows"]}
    assert by["popularity", "none"]["dp"]["release"] is None
    assert by["popularity", "clip"]["dp"]["epsilon"] == DP_CLIP_ONLY_EPSILON
    release = by["item-knn", "1"]["dp"]["release"]
    assert release["released"] == "item x item co-occurrence counts"
    assert release["max_per_user"] == 20 and release["mechanism"] == "laplace"
    assert by["item-knn", "1"]["params"]["dp_epsilon"] == 1.0
    # the main table is untouched: the sweep has its own rows and files
    assert [r["model"] for r in results["rows"]] == ["popularity", "popularity"]
    assert (out / "cells" / "toy" / "random" / "dp" / "item-knn-eps-10" / "result.json").is_file()
    with (out / "dp_sweep.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 8 and "dp.point" in lines[0] and "metrics.ndcg@10" in lines[0]
    # noise costs accuracy: at epsilon 1 item-kNN's co-occurrence path is worse than without
    assert by["item-knn", "1"]["metrics"]["ndcg@10"] < by["item-knn", "none"]["metrics"]["ndcg@10"]


def test_a_rerun_reuses_the_sweep_cells(
    study: tuple[Path, dict[str, Any]], toy_platform: Dataset
) -> None:
    out, first = study
    again = run_study(_config(), out, datasets={"toy": toy_platform}, leaderboard=False)
    assert again["study"]["cells_reused"] == again["study"]["cells"]
    assert [r["metrics"] for r in again["dp_sweep"]["rows"]] == [
        r["metrics"] for r in first["dp_sweep"]["rows"]
    ]


def test_leaderboard_shows_the_audit_and_the_privacy_cost(
    study: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, results = study
    html = write_leaderboard(results, tmp_path).read_text(encoding="utf-8")
    assert 'id="audit-toy-random"' in html and "Popularity lift" in html
    assert 'id="privacy"' in html and "Differential privacy" in html
    assert "co-occurrence" in html  # what item-kNN releases
    # an old results.json without audit or sweep still renders
    bare = {"rows": [{k: v for k, v in r.items() if k != "audit"} for r in results["rows"]]}
    html = write_leaderboard(bare, tmp_path / "old").read_text(encoding="utf-8")
    assert 'id="privacy"' not in html


def test_sweep_planning_and_validation() -> None:
    off = _config(dp={"enabled": False})
    assert plan_dp_cells(off) == []
    on = _config(
        dp={"enabled": True, "epsilons": [0.5], "clip_only": False, "protocols": ["cold-items"]}
    )
    cells = plan_dp_cells(on)
    assert [(c.protocol.name, c.model.name, c.variant) for c in cells] == [
        ("cold-items", "popularity", "none"),
        ("cold-items", "popularity", "0.5"),
        ("cold-items", "item-knn", "none"),
        ("cold-items", "item-knn", "0.5"),
    ]
    with pytest.raises(ConfigError, match="no differential-privacy option"):
        _config(dp={"enabled": True, "models": [{"name": "ease"}]})
    with pytest.raises(ConfigError, match="sets dp_epsilon itself"):
        _config(dp={"models": [{"name": "popularity", "params": {"dp_epsilon": 1.0}}]})
    with pytest.raises(ConfigError, match=r"dp\.protocols"):
        _config(dp={"protocols": ["temporal"]})
    with pytest.raises(ConfigError, match="epsilons"):
        _config(dp={"epsilons": [0.0]})


def test_shipped_profiles_run_the_sweep_where_it_is_affordable() -> None:
    from serendip.evaluation.study.config import load_profile

    privacy = load_profile("privacy")
    assert privacy.dp.enabled and {d.source for d in privacy.datasets} == {
        "ml-100k",
        "synthetic:small",
    }
    assert [m.name for m in privacy.dp.models] == ["popularity", "item-knn"]
    assert load_profile("full").dp.enabled
    assert not load_profile("quick").dp.enabled  # item-kNN's DP path costs minutes on `small`
