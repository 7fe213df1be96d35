"""`serendip analyze`: loads a source, writes report.html + analysis.json, reports bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app

runner = CliRunner()

INTERACTIONS = (
    "user,item,timestamp,event\n"
    "u1,i1,2024-01-01T10:00:00Z,view\n"
    "u1,i1,2024-01-01T10:05:00Z,like\n"
    "u1,i2,2024-01-02T09:00:00Z,view\n"
    "u2,i1,2024-01-03T12:00:00Z,view\n"
    "u2,i3,2024-01-09T12:00:00Z,share\n"
    "u3,i2,2024-01-10T08:00:00Z,view\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_analyze_csv_with_social_and_items(tmp_path: Path) -> None:
    inter = write(tmp_path, "events.csv", INTERACTIONS)
    social = write(tmp_path, "follows.csv", "follower,followee\nu1,u2\nu2,u1\nu3,u1\n")
    items = write(
        tmp_path,
        "items.csv",
        "item,title,author\ni1,First,u2\ni2,Second,u1\ni3,Third,u3\ni4,Never,u3\n",
    )
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        ["analyze", str(inter), "--out", str(out), "--social", str(social), "--items", str(items)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out / "report.html")
    data = json.loads((out / "analysis.json").read_text())
    assert data["counts"]["n_interactions"] == 6
    assert data["counts"]["n_items"] == 4 and data["cold_start"]["items_never_interacted"] == 1
    assert data["social"]["n_edges"] == 3 and data["social"]["reciprocity"] == pytest.approx(2 / 3)
    # Author followed: u1 on i1 (by u2) twice, u3 on i2 (by u1). Followee before: u2 on i1
    # (u1 viewed it on Jan 1), u3 on i2 (u1 viewed it on Jan 2).
    inn = data["in_network"]
    assert inn["share_author_followed"] == pytest.approx(3 / 6)
    assert inn["share_followee_interacted"] == pytest.approx(2 / 6)
    assert inn["share_in_network"] == pytest.approx(4 / 6) and inn["method"] == "exact"
    assert data["events"]["counts"] == {"view": 4, "like": 1, "share": 1}
    assert data["temporal"]["growth"]["starts"] == ["2024-01-01", "2024-01-08"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h1>events</h1>" in html and "data:image/png;base64," in html
    assert (out / "plots" / "degrees.png").is_file()


def test_analyze_drops_bad_rows_and_lists_them_as_errors(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", INTERACTIONS + "u3,i3,yesterday,view\n")
    out = tmp_path / "out"
    refused = runner.invoke(app, ["analyze", str(inter), "--out", str(out)])
    assert refused.exit_code == 1
    assert refused.output.startswith("error: ") and "line 8" in refused.output
    assert "cannot parse 'yesterday'" in refused.output and "Traceback" not in refused.output
    assert not out.exists()

    result = runner.invoke(app, ["analyze", str(inter), "--out", str(out), "--on-bad-rows", "drop"])
    assert result.exit_code == 0, result.output
    assert "1 dropped" in result.output
    quality = json.loads((out / "analysis.json").read_text())["quality"]
    dropped = [q for q in quality if "rows dropped while loading" in q["problem"]]
    assert len(dropped) == 1 and dropped[0]["severity"] == "error" and dropped[0]["count"] == 1
    assert "unparsable timestamp" in dropped[0]["problem"] and dropped[0]["example"] == "lines 8"
    assert quality[0] == dropped[0]


def test_analyze_reports_a_missing_source(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["analyze", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "nope.csv" in result.output


def test_analyze_rejects_an_unknown_format(tmp_path: Path) -> None:
    inter = write(tmp_path, "events.csv", INTERACTIONS)
    result = runner.invoke(
        app, ["analyze", str(inter), "--out", str(tmp_path / "o"), "--format", "excel"]
    )
    assert result.exit_code == 2
    assert "excel" in result.output
