"""The scale file: built from the committed benchmarks, validated on load, projected by its curve."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from serendip.errors import DataError
from serendip.reporting.scale import (
    METRICS,
    SCHEMA,
    from_benchmarks,
    load_scale,
    parse_scale,
    project,
    scale_document,
    write_scale,
)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _doc() -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "points": [
            {"name": "a", "users": 1000, "items": 100, "interactions": 10_000, "measured": True,
             "metrics": {"fit_wall_s": 10.0, "serve_capacity_rps": 500.0}},
            {"name": "b", "users": 10_000, "items": 1000, "interactions": 100_000, "measured": True,
             "metrics": {"fit_wall_s": 40.0, "serve_capacity_rps": 400.0}},
        ],
    }  # fmt: skip


def test_from_benchmarks_reads_the_committed_measurements() -> None:
    scale = from_benchmarks(BENCH)
    serve = json.loads((BENCH / "serve.json").read_text())
    small = json.loads((BENCH / "serve-small.json").read_text())
    by_name = {p.name: p for p in scale.points}
    platform, sm = by_name["platform"], by_name["small"]
    assert platform.measured and sm.measured
    assert platform.users == serve["n_users"] and sm.users == small["n_users"]
    assert platform.metrics["serve_capacity_rps"] == serve["highest_rate_p99_under_100ms"]
    assert sm.metrics["serve_capacity_rps"] == small["highest_rate_p99_under_100ms"]
    rate200 = next(r for r in serve["latency"] if r["rate"] == 200)
    assert platform.metrics["serve_p99_ms"] == rate200["p99_ms"]
    assert platform.metrics["fit_wall_s"] is not None  # read from the benchmark's note
    assert platform.fit_interactions < platform.interactions  # the 14-day training window
    projected = [p for p in scale.points if not p.measured]
    assert {p.users for p in projected} == {50_000, 1_000_000, 10_000_000}
    assert all(p.sources for p in projected)


def test_project_measured_and_curve(tmp_path: Path) -> None:
    scale = parse_scale(_doc())
    at_b = project(scale, 10_000)
    assert at_b["fit_wall_s"].measured and at_b["fit_wall_s"].value == 40.0
    assert at_b["fit_wall_s"].source == "points/1/metrics/fit_wall_s"
    far = project(scale, 100_000)  # x = 1,000,000 interactions: the log-log line goes on
    b = math.log(40 / 10) / math.log(10)
    assert not far["fit_wall_s"].measured
    assert far["fit_wall_s"].value == pytest.approx(40 * 10**b)
    # a "hold" metric keeps the largest measured point's value
    assert far["serve_capacity_rps"].value == 400.0
    assert far["peak_memory_mb"].value is None


def test_one_point_grows_linearly() -> None:
    doc = _doc()
    doc["points"] = doc["points"][:1]
    far = project(parse_scale(doc), 10_000)
    assert far["fit_wall_s"].value == pytest.approx(100.0)


def test_round_trip(tmp_path: Path) -> None:
    doc = scale_document(BENCH)
    path = write_scale(doc, tmp_path / "scale.json")
    again = load_scale(path)
    assert [p.name for p in again.points] == [p["name"] for p in doc["points"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(schema="other/1"), "schema"),
        (lambda d: d["points"][0].update(users=0), "points[0].users"),
        (lambda d: d["points"][1]["metrics"].update(nope=1.0), "points[1].metrics.nope"),
        (lambda d: d["points"][0]["metrics"].update(fit_wall_s=-1), "points[0].metrics.fit_wall_s"),
        (lambda d: d["points"][0].update(measured="yes"), "points[0].measured"),
        (lambda d: [p.update(measured=False) for p in d["points"]], "points"),
    ],
)
def test_bad_scale_files_name_the_field(tmp_path: Path, change: Any, field: str) -> None:
    doc = _doc()
    change(doc)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        load_scale(path)
    assert f"field '{field}'" in str(err.value)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{nope")
    with pytest.raises(DataError, match="not valid JSON"):
        load_scale(path)
    with pytest.raises(DataError, match="not found"):
        load_scale(tmp_path / "absent.json")


def test_every_metric_documented() -> None:
    assert all(spec.kind in {"loglog", "hold"} and spec.unit for spec in METRICS.values())


def test_the_scale_benchmarks_file_is_what_the_report_reads() -> None:
    from serendip.reporting.report import SCALE_FILE, _scale

    committed = BENCH / SCALE_FILE
    if not committed.is_file():
        pytest.skip("benchmarks/bench_scale.py has not written its file yet")
    scale = load_scale(committed)
    assert scale.generated_by == "benchmarks/bench_scale.py"
    assert Path(_scale(None).path).resolve() == committed.resolve()
    measured = scale.measured
    assert len(measured) >= 1 and all(p.metrics.get("fit_wall_s") for p in measured)
    # every projected metric names where it came from
    for p in scale.points:
        if not p.measured:
            assert all(p.sources.get(k) for k, v in p.metrics.items() if v is not None)
