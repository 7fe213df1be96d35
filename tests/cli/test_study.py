"""`serendip study`: runs a profile with narrowing flags, resumes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.cli.study import select
from serendip.errors import ConfigError
from serendip.evaluation.study.config import load_profile

runner = CliRunner()


def test_quick_profile_on_tiny(tmp_path: Path) -> None:
    out = tmp_path / "q"
    args = [
        "study", "--profile", "quick", "--dataset", "synthetic:tiny",
        "--model", "popularity", "--model", "in-network", "--protocol", "random", "--out", str(out),
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert [(r["dataset"], r["protocol"], r["model"]) for r in results["rows"]] == [
        ("synthetic-tiny", "random", "popularity"),
        ("synthetic-tiny", "random", "in-network"),
    ]
    assert all(r["status"] == "ok" for r in results["rows"])
    assert results["study"]["profile"] == "quick"
    assert (out / "cache" / "synthetic-tiny-seed42" / "manifest.json").is_file()
    assert "results:" in res.output
    assert (out / "leaderboard.html").is_file()
    assert "leaderboard:" in res.output
    # a rerun reuses both cells
    again = runner.invoke(app, [*args, "--no-leaderboard"])
    assert again.exit_code == 0, again.output
    assert "2 of 2 cells already finished" in again.output


def test_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        'k = [10]\nlatency_users = 3\n[[datasets]]\nsource = "synthetic:tiny"\n'
        'protocols = ["cold-items"]\n[[models]]\nname = "popularity"\n[pipeline]\nenabled = false\n'
    )
    res = runner.invoke(
        app, ["study", "--config", str(cfg), "--out", str(tmp_path / "o"), "--no-leaderboard"]
    )
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "o" / "results.json").read_text())["rows"][0]
    assert row["protocol"] == "cold-items" and set(row["metrics"]) >= {"ndcg@10"}
    assert "ndcg@5" not in row["metrics"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "--model 'nope'"),
        (["--dataset", "nowhere"], "--dataset 'nowhere'"),
        (["--profile", "slow"], "unknown profile 'slow'"),
        (["--protocol", "leave-last"], "--protocol"),
        (["--config", "x.toml", "--profile", "quick"], "not both"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["study", "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 1
    assert res.output.startswith("error: ") and message in res.output
    assert "Traceback" not in res.output


def test_select() -> None:
    quick = load_profile("quick")
    narrowed = select(quick, models=["popularity", "ease"], max_trials=1)
    assert [m.name for m in narrowed.models] == ["popularity", "ease"]
    assert narrowed.peers == () and not narrowed.pipeline.enabled
    assert all(m.trials <= 1 for m in narrowed.models)
    moved = select(quick, datasets=["synthetic:tiny"])
    assert [d.name for d in moved.datasets] == ["synthetic-tiny"]
    assert moved.datasets[0].protocols == quick.datasets[0].protocols
    full = load_profile("full")
    only = select(full, datasets=["ml-100k"], protocols=["temporal"])
    assert [(d.name, [p.name for p in d.protocols]) for d in only.datasets] == [
        ("ml-100k", ["temporal"])
    ]
    with pytest.raises(ConfigError):
        select(full, models=["nope"])


def test_demo_runs_the_quick_study_on_its_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serendip.evaluation.study.config as config_module

    real = config_module.load_profile

    def smaller(name: str) -> object:  # the quick profile, one model and one protocol
        return select(real(name), models=["popularity"], protocols=["random"])

    monkeypatch.setattr(config_module, "load_profile", smaller)
    served: list[object] = []
    # the server itself blocks until Ctrl-C: capture the settings it would run with
    monkeypatch.setattr("serendip.service.server.run_server", served.append)
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--preset", "tiny", "--out", str(out), "--port", "8123"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "study" / "results.json").read_text())
    assert sorted((r["dataset"], r["model"], r["status"]) for r in results["rows"]) == [
        ("synthetic-tiny", "pipeline", "ok"),  # the production pipeline is in the demo's study
        ("synthetic-tiny", "popularity", "ok"),
    ]
    assert (out / "analysis" / "report.html").is_file()
    assert not (out / "study" / "cache").exists()  # the platform was not generated twice
    assert str(out / "study") in res.output.replace("\n", "")
    # the story goes on: assessment, report and deck from the study's files, then the server
    assert (out / "assessment" / "privacy-impact-assessment.json").is_file()
    assert (out / "report" / "report.html").is_file() and (out / "report" / "deck.pptx").is_file()
    assert "recommendation:" in res.output
    assert "http://127.0.0.1:8123/" in res.output
    (settings,) = served
    assert settings.study_dir == out / "study"  # type: ignore[attr-defined]
    assert settings.bootstrap_preset == "tiny" and settings.bootstrap_seed == 42  # type: ignore[attr-defined]
    assert str((out / "serve").resolve()) in settings.db_url  # type: ignore[attr-defined]


def test_demo_without_serving_stops_after_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("serendip.service.server.run_server", served.append)
    out = tmp_path / "demo"
    res = runner.invoke(
        app, ["demo", "--preset", "tiny", "--out", str(out), "--no-study", "--no-serve"]
    )
    assert res.exit_code == 0, res.output
    assert (out / "analysis" / "report.html").is_file() and not served
    assert "dashboard" not in res.output
