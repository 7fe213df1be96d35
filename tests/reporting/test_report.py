"""The decision report: every table cell traces to the study, scale and costs files; the cost
tables follow the costs file; the recommendation follows the stated rule; PDF and deck are made."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.errors import DataError
from serendip.reporting.costs import default_costs_path
from serendip.reporting.data import resolve
from serendip.reporting.report import SCALES, ReportData, build_report, chromium_path, write_report
from serendip.reporting.scale import project
from serendip.reporting.slides import write_deck

runner = CliRunner()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny platform analysed and studied as `serendip demo` lays it out: base/analysis, base/study."""
    base = tmp_path_factory.mktemp("report")
    for args in (
        ["generate", "--preset", "tiny", "--seed", "3", "--out", str(base / "data")],
        ["analyze", str(base / "data"), "--out", str(base / "analysis")],
        ["study", "--profile", "quick", "--dataset", "synthetic:tiny", "--model", "popularity",
         "--model", "ials", "--model", "in-network", "--protocol", "random",
         "--protocol", "cold-users", "--max-trials", "0", "--out", str(base / "study")],
    ):  # fmt: skip
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    return base


@pytest.fixture(scope="module")
def data(platform: Path) -> ReportData:
    return build_report(platform / "study")


def _costs(tmp_path: Path, old: str, new: str) -> Path:
    text = default_costs_path().read_text()
    assert old in text
    path = tmp_path / "costs.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def _close(a: Any, b: Any) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def test_every_number_traces_to_the_files(data: ReportData) -> None:
    docs = data.documents
    assert set(docs) >= {"study", "scale", "costs", "analysis"}
    checked = derived = 0
    for table in data.tables.values():
        for row in table.rows:
            for cell in row:
                if not cell.numeric:
                    continue
                if cell.source is not None:
                    assert _close(resolve(docs, cell.source), cell.value), (table.key, cell)
                    checked += 1
                elif cell.formula != "platform size":
                    assert cell.inputs and cell.formula, (table.key, cell)
                    for pointer in cell.inputs:
                        resolve(docs, pointer)  # every input exists in its file
                    derived += 1
    assert checked > 50 and derived > 20
    # the study's numbers: each comparison cell is the row's metric
    comp = data.tables["comparison"]
    rows = {r["model"]: r for r in data.study.rows if r["protocol"] == data.study.protocol}
    for row in comp.rows:
        assert row[2].value == rows[row[0].text]["metrics"][data.study.metric]
    # projected infrastructure cells are the scale file's curve
    infra = data.tables["infrastructure"]
    fit = next(r for r in infra.rows if r[0].text.startswith("model fit, wall"))
    for n, cell in zip(SCALES, fit[1:], strict=True):
        assert _close(cell.value, project(data.scale, n)["fit_wall_s"].value)


def test_cost_assumption_changes_the_cost_tables(
    platform: Path, data: ReportData, tmp_path: Path
) -> None:
    dearer = build_report(
        platform / "study", costs=_costs(tmp_path, "usd_per_hour = 0.384", "usd_per_hour = 0.768")
    )
    before, after = data.tables["costs"], dearer.tables["costs"]
    serving = before.columns.index("serving")
    for a, b in zip(before.rows, after.rows, strict=True):
        if a[0].text.startswith("Build"):
            assert b[serving].value == pytest.approx(2 * float(a[serving].value or 0))
    assert before.column("per month") != after.column("per month")
    salary = build_report(
        platform / "study",
        costs=_costs(tmp_path, "usd_per_person_month = 15000", "usd_per_person_month = 20000"),
    )
    one = data.tables["costs"].columns.index("one-time")
    for a, b in zip(data.tables["costs"].rows, salary.tables["costs"].rows, strict=True):
        assert b[one].value == pytest.approx(float(a[one].value or 0) * 20000 / 15000)


def test_recommendation_follows_the_rule(platform: Path, data: ReportData, tmp_path: Path) -> None:
    chosen = data.decision.chosen
    assert chosen is not None and chosen.kind == "build"
    built = [o for o in data.options if o.kind == "build"]
    best = max(o.accuracy or 0 for o in built)
    assert (chosen.accuracy or 0) >= best * (1 - data.costs.decision.accuracy_tolerance)
    assert f'Recommendation: <b class="big">{chosen.label}</b>' in _html(data, tmp_path)

    # another family becomes far more accurate in the study: the rule picks it
    study2 = tmp_path / "study2"
    shutil.copytree(
        platform / "study", study2, ignore=shutil.ignore_patterns("cells", "cache", "splits")
    )
    results = json.loads((study2 / "results.json").read_text())
    loser = next(o for o in built if o.key != chosen.key)
    results["rows"][loser.row_index]["metrics"][data.study.metric] = 2 * best
    (study2 / "results.json").write_text(json.dumps(results))
    flipped = build_report(study2, analysis=platform / "analysis")
    assert flipped.decision.chosen is not None and flipped.decision.chosen.key == loser.key

    # building becomes expensive: buying wins by the margin
    pricey = build_report(
        platform / "study",
        costs=_costs(tmp_path, "usd_per_person_month = 15000", "usd_per_person_month = 150000"),
    )
    assert pricey.decision.chosen is not None and pricey.decision.chosen.kind == "buy"
    # ... unless the data may not leave the platform
    text = _costs(
        tmp_path, "usd_per_person_month = 15000", "usd_per_person_month = 150000"
    ).read_text()
    (tmp_path / "self.toml").write_text(
        text.replace("require_self_hosting = false", "require_self_hosting = true")
    )
    kept = build_report(platform / "study", costs=tmp_path / "self.toml")
    assert kept.decision.chosen is not None and kept.decision.chosen.kind == "build"
    assert all(o.blocked for o in kept.options if o.kind == "buy")


def _html(data: ReportData, tmp_path: Path) -> str:
    html, _ = write_report(data, tmp_path / "html", pdf=False)
    return html.read_text()


def test_report_sections_and_assessment(platform: Path, data: ReportData, tmp_path: Path) -> None:
    page = _html(data, tmp_path)
    for anchor, title in data.sections:
        assert f'id="{anchor}"' in page and title in page
    for ref in ("Sarwar", "Y. Hu, Y. Koren", "Steck", "Covington", "Dacrema", "Kang"):
        assert ref in page
    assert "assessment was not supplied" in page
    assert (tmp_path / "html" / "plots" / "cost.png").is_file()
    note = tmp_path / "pia.md"
    note.write_text("Lawful basis: legitimate interest <checked>")
    with_pia = build_report(platform / "study", assessment=note)
    assert "Lawful basis: legitimate interest &lt;checked&gt;" in _html(with_pia, tmp_path)
    with pytest.raises(DataError, match="not found"):
        build_report(platform / "study", assessment=tmp_path / "absent.md")
    # the JSON `serendip assess` writes (Assessment.to_dict), found in its output directory
    pia = tmp_path / "pia"
    pia.mkdir()
    (pia / "privacy-impact-assessment.json").write_text(
        json.dumps(
            {
                "created": 0,
                "database": "sqlite:///x.db",
                "purposes": [
                    {"name": "Personalised recommendations", "data": "events", "basis": "service"}
                ],
                "risks": [{"id": "R1", "title": "Re-identification", "description": "raw IDs"}],
                "risk_coverage": {"R1": ["M2"]},
                "mitigations": [
                    {
                        "id": "M2",
                        "title": "Pseudonyms",
                        "code": "serendip.privacy.pseudonym",
                        "test": "t.py::x",
                    }
                ],
                "missing": [{"id": "M9", "title": "Encryption at rest", "problems": ["no code"]}],
                "tables": [
                    {"name": "events", "personal": True},
                    {"name": "items", "personal": False},
                ],
            }
        )
    )
    page = _html(build_report(platform / "study", assessment=pia), tmp_path)
    assert (
        "R1 Re-identification" in page and "M2" in page and "M9 Encryption at rest: no code" in page
    )
    assert "1 of 2 stored tables hold personal data: events" in page
    with pytest.raises(DataError, match=r"no privacy-impact-assessment\.json"):
        build_report(platform / "study", assessment=tmp_path / "html")


def test_unconfirmed_prices_are_named(data: ReportData, tmp_path: Path) -> None:
    page = _html(data, tmp_path)
    assert "Prices not confirmed on the provider's page" in page
    assert "Amazon Personalize: training" in page


@pytest.mark.skipif(chromium_path() is None, reason="no system Chromium to print the PDF")
def test_pdf_is_printed(data: ReportData, tmp_path: Path) -> None:
    _, pdf = write_report(data, tmp_path / "pdf")
    assert pdf is not None and pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_deck_has_10_to_15_slides(data: ReportData, tmp_path: Path) -> None:
    from pptx import Presentation

    pptx, html = write_deck(data, tmp_path / "deck")
    n = len(Presentation(str(pptx)).slides)
    assert 10 <= n <= 15
    page = html.read_text()
    assert page.count('<section class="slide"') == n
    assert data.decision.chosen is not None and data.decision.chosen.label in page
