"""The study loop on the toy platform: results, agreement with `serendip evaluate`, resume,
determinism, failed cells, the cold-user path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.data.dataset import Dataset
from serendip.evaluation.study.config import StudyConfig, parse_config
from serendip.evaluation.study.runner import (
    StudyEvent,
    _without_users,
    code_version,
    plan_cells,
    run_study,
)
from serendip.models.baselines import Popularity
from serendip.models.neighborhood import ItemKNN


def _config(models: list[Any] | None = None, **over: Any) -> StudyConfig:
    data: dict[str, Any] = {
        "profile": "test",
        "quick": True,
        "latency_users": 5,
        "datasets": [{"name": "toy", "source": "toy", "protocols": ["random", "cold-users"]}],
        "models": [
            m if isinstance(m, dict) else {"name": m}
            for m in (models or ["popularity", "item-knn"])
        ],
        "pipeline": {"enabled": False},
    }
    data.update(over)
    return parse_config(data)


def _run(config: StudyConfig, out: Path, toy: Dataset, **kw: Any) -> dict[str, Any]:
    kw.setdefault("leaderboard", False)  # the leaderboard has its own tests
    return run_study(config, out, datasets={"toy": toy}, **kw)


def _cell(out: Path, protocol: str, model: str) -> Path:
    return out / "cells" / "toy" / protocol / model


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, toy_platform: Dataset) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study")
    return out, _run(_config(), out, toy_platform)


def test_end_to_end(study: tuple[Path, dict[str, Any]]) -> None:
    out, results = study
    rows = results["rows"]
    assert [(r["protocol"], r["model"]) for r in rows] == [
        ("random", "popularity"),
        ("random", "item-knn"),
        ("cold-users", "popularity"),
        ("cold-users", "item-knn"),
    ]
    for r in rows:
        assert r["status"] == "ok", r["error"]
        assert r["kind"] == "model" and r["seed"] == 42
        assert r["code_version"] == code_version()
        for key in ("precision@5", "ndcg@10", "map@20", "coverage@10", "novelty@10", "ild@10"):
            assert key in r["metrics"]
        assert r["slices"] and r["n_test_users"] > 0
        cost = r["cost"]
        assert cost["fit_seconds"] >= 0 and cost["model_size_mb"] > 0
        assert cost["recommend_single_p99_ms"] >= cost["recommend_single_p50_ms"] > 0
        assert "RSS" in cost["peak_memory_measures"]
        cell = _cell(out, r["protocol"], r["model"])
        assert {p.name for p in cell.iterdir()} == {"result.json", "recs.csv", "per_user.npz"}
        with np.load(cell / "per_user.npz") as npz:
            assert len(npz["users"]) == r["n_test_users"]
            assert np.isclose(npz["ndcg@10"].mean(), r["metrics"]["ndcg@10"])
    assert rows[0]["family"] == "baselines" and rows[1]["family"] == "neighborhood"
    # quick: item-knn starts from its quick_params
    assert rows[1]["params"]["k"] == ItemKNN.quick_params["k"]
    assert (out / "results.json").is_file() and (out / "results.csv").is_file()
    assert not (out / "leaderboard.html").exists()  # leaderboard=False (tests/cli writes one)
    csv = (out / "results.csv").read_text().splitlines()
    assert len(csv) == 5 and csv[0].startswith("dataset,protocol,model,kind,family,status")
    stored = json.loads((out / "results.json").read_text())
    assert stored["study"]["profile"] == "test" and stored["study"]["cells"] == 4
    sig = stored["significance"]
    if sig:  # the significance module is present: item-knn vs the best baseline, per protocol
        assert {(s["protocol"], s["model"], s["baseline"]) for s in sig} == {
            ("random", "item-knn", "popularity"),
            ("cold-users", "item-knn", "popularity"),
        }


def test_splits_are_written_whole(study: tuple[Path, dict[str, Any]]) -> None:
    """Each split lands in its final directory at once (no temporary sibling left behind)."""
    out, _ = study
    folder = out / "splits" / "toy"
    assert sorted(p.name for p in folder.iterdir()) == ["cold-users", "random"]
    for protocol in ("random", "cold-users"):
        assert (folder / protocol / "split.json").is_file()


def test_cold_users_get_their_history_as_context(
    study: tuple[Path, dict[str, Any]], toy_platform: Dataset
) -> None:
    out, results = study
    split = json.loads((out / "splits" / "toy" / "cold-users" / "split.json").read_text())
    assert "fold_in" in split["files"]
    cold = next(
        r for r in results["rows"] if r["protocol"] == "cold-users" and r["model"] == "item-knn"
    )
    assert not any("no cold-start path" in n for n in cold["notes"])
    # item-knn with fold-in history beats what an empty history would give (popularity order)
    pop = next(
        r for r in results["rows"] if r["protocol"] == "cold-users" and r["model"] == "popularity"
    )
    assert cold["metrics"]["ndcg@10"] != pop["metrics"]["ndcg@10"]


def test_without_users(toy_platform: Dataset) -> None:
    ds = toy_platform
    busy = np.unique(ds.interactions.user)
    drop = busy[:3]
    rest = ds.filter_interactions(~np.isin(ds.interactions.user, drop))
    small = _without_users(rest, drop)
    assert small.n_users == ds.n_users - 3
    assert not set(ds.users.lookup(drop)) & set(small.users.ids)
    assert small.interactions_frame().equals(rest.interactions_frame())
    assert len(small.social) < len(ds.social)
    assert len(small.user_meta) == small.n_users


@pytest.mark.parametrize(
    ("protocol", "model"), [("random", "item-knn"), ("cold-users", "item-knn")]
)
def test_numbers_agree_with_serendip_evaluate(
    study: tuple[Path, dict[str, Any]], protocol: str, model: str
) -> None:
    out, results = study
    row = next(r for r in results["rows"] if (r["protocol"], r["model"]) == (protocol, model))
    split = out / "splits" / "toy" / protocol
    args = [
        "evaluate",
        "--train", str(split / "train.csv"),
        "--test", str(split / "test.csv"),
        "--recs", str(_cell(out, protocol, model) / "recs.csv"),
        "--items", str(split / "items.csv"),
        "--social", str(split / "social.csv"),
        "--k", "5", "--k", "10", "--k", "20",
        "--json",
    ]  # fmt: skip
    if (split / "fold_in.csv").is_file():
        args += ["--fold-in", str(split / "fold_in.csv")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)["metrics"]
    assert set(metrics) == set(row["metrics"])
    for key, value in row["metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key


def test_resume_skips_finished_cells(
    tmp_path: Path, toy_platform: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(
        ["popularity"], datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}]
    )
    _run(cfg, tmp_path, toy_platform)
    first = (_cell(tmp_path, "random", "popularity") / "result.json").read_text()

    def refuse(self: Any, ds: Any) -> None:
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(Popularity, "_fit", refuse)
    events: list[StudyEvent] = []
    two = _config(
        ["popularity", "item-knn"],
        datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}],
    )
    results = _run(two, tmp_path, toy_platform, on_event=events.append)
    assert [r["status"] for r in results["rows"]] == ["ok", "ok"]
    assert (_cell(tmp_path, "random", "popularity") / "result.json").read_text() == first
    start = next(e for e in events if e.kind == "start")
    assert (start.done, start.total) == (1, 2)
    assert [e.cell.label for e in events if e.kind == "cell" and e.cell] == ["toy/random/item-knn"]
    # --fresh recomputes (and here the patched fit fails, recorded, the study goes on)
    again = _run(two, tmp_path, toy_platform, fresh=True)
    assert [r["status"] for r in again["rows"]] == ["failed", "ok"]


def test_interrupt_keeps_finished_cells(
    tmp_path: Path, toy_platform: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}])
    original = ItemKNN._fit

    def interrupt(self: Any, ds: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ItemKNN, "_fit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tmp_path, toy_platform)
    assert (_cell(tmp_path, "random", "popularity") / "result.json").is_file()
    assert not (_cell(tmp_path, "random", "item-knn") / "result.json").exists()
    assert not (tmp_path / "results.json").exists()
    first = (_cell(tmp_path, "random", "popularity") / "result.json").read_text()
    monkeypatch.setattr(ItemKNN, "_fit", original)
    results = _run(cfg, tmp_path, toy_platform)
    assert [r["status"] for r in results["rows"]] == ["ok", "ok"]
    assert (_cell(tmp_path, "random", "popularity") / "result.json").read_text() == first


def test_deterministic(tmp_path: Path, toy_platform: Dataset) -> None:
    cfg = _config(
        datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}],
        models=[{"name": "popularity"}, {"name": "item-knn", "trials": 2}],
    )
    a = _run(cfg, tmp_path / "a", toy_platform)
    b = _run(cfg, tmp_path / "b", toy_platform)
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert ra["metrics"] == rb["metrics"]
        assert ra["params"] == rb["params"]
    assert a["rows"][1]["tuning"]["trials"] == 2
    assert "best_validation" in a["rows"][1]["tuning"]
    for name in ("popularity", "item-knn"):
        recs = [
            (p / "cells/toy/random" / name / "recs.csv").read_text()
            for p in (tmp_path / "a", tmp_path / "b")
        ]
        assert recs[0] == recs[1]


def test_failed_cell_is_recorded_and_the_study_goes_on(
    tmp_path: Path, toy_platform: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Any, ds: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ItemKNN, "_fit", boom)
    cfg = _config(
        datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}],
        models=[
            {"name": "item-knn"},
            {"name": "ease", "params": {"l2": -5}},
            {"name": "popularity"},
        ],
    )
    results = _run(cfg, tmp_path, toy_platform)
    knn, ease, pop = results["rows"]
    assert knn["status"] == "failed" and knn["error"] == "RuntimeError: boom"
    assert ease["status"] == "failed" and "invalid parameters for model 'ease'" in ease["error"]
    assert pop["status"] == "ok"
    assert results["study"]["failed"] == 2
    stored = json.loads((_cell(tmp_path, "random", "item-knn") / "result.json").read_text())
    assert stored["status"] == "failed"
    assert "failed" in (tmp_path / "results.csv").read_text()


def test_plan_notes_missing_parts() -> None:
    cfg = _config(["popularity"], pipeline={"enabled": True})
    cells, notes = plan_cells(cfg)
    from serendip.models.registry import MODELS

    kinds = [c.kind for c in cells]
    if "pipeline" in MODELS:
        assert "pipeline" in kinds
    else:
        assert any("pipeline skipped" in n for n in notes)


def test_pipeline_params_follow_the_protocol() -> None:
    """On the random and cold-users protocols the pipeline's ranker learns from random label
    windows (its own split mirrors the one it is judged on); other protocols keep the
    configured parameters, and a profile can override both."""
    cfg = _config(["popularity"], pipeline={"enabled": True, "params": {"ranker.n_models": 1}})
    cells, _ = plan_cells(cfg)
    pipe = {c.protocol.name: c.model for c in cells if c.kind == "pipeline"}
    assert set(pipe) == {"random", "cold-users"}
    assert pipe["random"].params == {"ranker.n_models": 1, "ranker.label_split": "random"}
    assert pipe["cold-users"].params == {"ranker.n_models": 1, "ranker.label_split": "random"}
    custom = _config(
        ["popularity"],
        pipeline={"enabled": True, "protocol_params": {"cold-users": {"ranker.n_windows": 1}}},
    )
    pipe = {c.protocol.name: c.model for c in plan_cells(custom)[0] if c.kind == "pipeline"}
    assert pipe["random"].params == {} and pipe["cold-users"].params == {"ranker.n_windows": 1}


def test_pipeline_collaborative_source_takes_the_tuned_parameters(
    tmp_path: Path, toy_platform: Dataset
) -> None:
    """The pipeline builds on the parameters the study tuned for its collaborative model on the
    same split (that model's cell runs first), unless its config sets them."""
    cfg = _config(
        [{"name": "item-knn", "trials": 3}],
        datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}],
        pipeline={
            "enabled": True,
            "params": {"sources.collaborative.params": {"model": "item-knn"}},
        },
    )
    results = _run(cfg, tmp_path, toy_platform)
    knn, pipe = results["rows"]
    assert knn["tuning"]["trials"] == 3 and pipe["status"] == "ok", pipe.get("error")
    source = pipe["params"]["sources"]["collaborative"]["params"]
    assert source == {"model": "item-knn", "params": knn["params"]}
    assert any("tuned in its own cell" in n for n in pipe["notes"])
    # parameters set in the pipeline's config win
    fixed = {"model": "item-knn", "params": {"k": 7}}
    cfg = _config(
        [{"name": "item-knn", "trials": 3}],
        datasets=[{"name": "toy", "source": "toy", "protocols": ["random"]}],
        pipeline={"enabled": True, "params": {"sources.collaborative.params": fixed}},
    )
    _, pipe = _run(cfg, tmp_path / "fixed", toy_platform)["rows"]
    assert pipe["params"]["sources"]["collaborative"]["params"] == fixed


def test_resolve_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serendip.errors import ConfigError
    from serendip.evaluation.study.runner import resolve_source

    (tmp_path / "ml-100k").mkdir()
    assert resolve_source("ml-100k", cache_dir=tmp_path, seed=1, shared_data=tmp_path) == (
        tmp_path / "ml-100k"
    )
    monkeypatch.setenv("SERENDIP_SHARED_DATA", str(tmp_path))
    assert resolve_source("ml-100k", cache_dir=tmp_path, seed=1) == tmp_path / "ml-100k"
    with pytest.raises(ConfigError, match="SERENDIP_SHARED_DATA"):
        resolve_source("lastfm-2k", cache_dir=tmp_path, seed=1)
    with pytest.raises(ConfigError, match="neither a known name nor an existing path"):
        resolve_source("no/such/dir", cache_dir=tmp_path, seed=1)
    assert resolve_source(str(tmp_path), cache_dir=tmp_path, seed=1) == tmp_path


@pytest.mark.realdata
def test_real_datasets_resolve_under_shared_data() -> None:
    from serendip.evaluation.study.runner import resolve_source
    from tests.conftest import shared_data

    base = shared_data("ml-100k").parent
    assert resolve_source("ml-100k", cache_dir=base, seed=0, shared_data=base).is_dir()
