"""`serendip report` and `serendip slides`: files written, the recommendation printed, mistakes as
one `error:` line. The study is the committed ML-100K study (benchmarks/results), so no fit runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.reporting.costs import default_costs_path

runner = CliRunner()
STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "study-ml-100k.json"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ml") / "study"
    d.mkdir()
    shutil.copyfile(STUDY, d / "results.json")
    return d


def test_report_and_slides(study: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["report", "--study", str(study), "--out", str(tmp_path / "r"), "--no-pdf"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("recommendation: Build: ")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "ml-100k" in page and "Literature review" in page
    res = runner.invoke(app, ["slides", "--study", str(study), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "deck.pptx").is_file() and (tmp_path / "s" / "deck.html").is_file()


def test_scale_and_costs_options(study: Path, tmp_path: Path) -> None:
    costs = tmp_path / "c.toml"
    costs.write_text(
        default_costs_path()
        .read_text()
        .replace("usd_per_person_month = 15000", "usd_per_person_month = 500000")
    )
    res = runner.invoke(
        app,
        [
            "report",
            "--study",
            str(study),
            "--costs",
            str(costs),
            "--out",
            str(tmp_path / "r"),
            "--no-pdf",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("recommendation: Buy: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "{tmp}/absent.json"], "scale file not found"),
        (["--scale", "{tmp}/bad.json"], "field 'schema'"),
        (["--costs", "{tmp}/bad.toml"], "unknown setting 'decision.nope'"),
        (["--analysis", "{tmp}"], "no analysis.json there"),
    ],
)
def test_errors_are_one_line(study: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    (tmp_path / "bad.json").write_text('{"schema": "x"}')
    (tmp_path / "bad.toml").write_text(default_costs_path().read_text() + "\nnope = 1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    res = runner.invoke(
        app, ["report", "--study", str(study), "--out", str(tmp_path / "o"), "--no-pdf", *args]
    )
    assert res.exit_code == 1
    assert res.output.startswith("error: ") and message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_missing_study(tmp_path: Path) -> None:
    res = runner.invoke(app, ["slides", "--study", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no results.json" in res.output
