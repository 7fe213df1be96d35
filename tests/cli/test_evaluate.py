"""`serendip evaluate`: scores from files, JSON and table output, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from serendip.cli.main import app

runner = CliRunner()

C3 = 1 / math.log2(3)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The hand-computed case of tests/evaluation/test_evaluate.py, as files."""
    train = pd.DataFrame(
        [
            ("a", "p"),
            ("a", "q"),
            ("b", "p"),
            ("c", "p"),
            ("c", "q"),
            ("c", "r"),
            ("c", "s"),
            ("c", "t"),
        ],
        columns=["user", "item"],
    )
    test = pd.DataFrame(
        [("a", "r"), ("a", "s"), ("a", "p"), ("b", "t"), ("c", "u"), ("d", "p")],
        columns=["user", "item"],
    )
    recs = pd.DataFrame(
        {
            "user": ["a", "a", "b", "b", "c", "c"],
            "item": ["t", "r", "t", "r", "p", "u"],
            "rank": [1, 2, 1, 2, 1, 2],
        }
    )
    items = pd.DataFrame(
        {
            "item": list("pqrstu"),
            "tags": ["x|y", "y", "", "", "x", "z"],
            "category": ["c1", "c1", "c2", "c2", "c1", "c2"],
            "author": ["", "", "", "", "b", "e"],
        }
    )
    social = pd.DataFrame({"follower": ["b", "c"], "followee": ["a", "e"]})
    out = {}
    for name, frame in {
        "train": train,
        "test": test,
        "recs": recs,
        "items": items,
        "social": social,
    }.items():
        out[name] = tmp_path / f"{name}.csv"
        frame.to_csv(out[name], index=False)
    return out


def args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "evaluate",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--recs",
        str(files["recs"]),
        *extra,
    ]


def test_json_output_has_the_hand_computed_scores(files: dict[str, Path]) -> None:
    result = runner.invoke(app, args(files, "--k", "2", "--json"))
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["n_users"] == 4
    assert d["metrics"]["ndcg@2"] == pytest.approx((C3 / (1 + C3) + 1 + C3) / 4)
    assert d["metrics"]["map@2"] == pytest.approx(0.4375)
    assert d["metrics"]["serendipity@2"] == pytest.approx(0.125)
    assert d["slice_sizes"] == {"cold": 3, "light": 1, "heavy": 0}
    assert "ild@2" not in d["metrics"]


def test_table_output_lists_metrics_and_slices(files: dict[str, Path]) -> None:
    result = runner.invoke(app, args(files, "--k", "2", "--k", "1"))
    assert result.exit_code == 0, result.output
    for text in ("precision@1", "ndcg@2", "coverage@2", "cold (3)", "light (1)", "0.4375"):
        assert text in result.stdout
    assert "1 test users have no recommendations" in result.stdout


def test_items_and_social_files_enable_diversity_and_network_metrics(
    files: dict[str, Path],
) -> None:
    extra = ("--items", str(files["items"]), "--social", str(files["social"]), "--k", "2", "--json")
    result = runner.invoke(app, args(files, *extra))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    # Content sets: p {x,y,c1} q {y,c1} r {c2} s {c2} t {x,c1} u {z,c2}.
    # a, b: [t, r] share nothing -> 1; c: [p, u] share nothing -> 1; d: no list -> 0.
    assert metrics["ild@2"] == pytest.approx(3 / 4)
    # b follows a (trained on p, q); c follows e (no training items, authored u); t is authored by b.
    # a: no followees -> both out; b: t, r out; c: p out, u in (e authored it). d: no list.
    assert metrics["oon_share@2"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    # Hits: a r (out), b t (out), c u (in): 2 of 3 hits out of network.
    assert metrics["oon_hit_share@2"] == pytest.approx(2 / 3)
    assert metrics["oon_hit_rate@2"] == pytest.approx(2 / 4)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "user,item,rank\na,t,1\na,r,two\n",
            "line 3, field 'rank': rank 'two' is not a positive integer",
        ),
        (
            "user,item,rank\na,t,1\nb,nope,1\n",
            "line 3, field 'item': item 'nope' is not in the catalog",
        ),
        ("user,item\na,t\n", "line 1, field 'rank': missing column(s) rank"),
        ("user,item,rank\na,t,1\na,t,2\n", "line 3, field 'item': user 'a' lists item 't' twice"),
        ("user,item,rank\na,t,1\na,r,1\n", "line 3, field 'rank': user 'a' uses rank 1 twice"),
        ("user,item,rank\na,t,1\nb,r,1,9\n", "line 3"),
        ("", "the file is empty"),
    ],
)
def test_malformed_recs_file_is_one_error_line(
    files: dict[str, Path], tmp_path: Path, content: str, expected: str
) -> None:
    files["recs"] = _write(tmp_path / "bad.csv", content)
    result = runner.invoke(app, args(files, "--k", "2"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {tmp_path / 'bad.csv'}")
    assert expected in lines[0]


def test_missing_file_and_bad_slices_are_clear_errors(
    files: dict[str, Path], tmp_path: Path
) -> None:
    files["recs"] = tmp_path / "absent.csv"
    result = runner.invoke(app, args(files))
    assert result.exit_code == 1
    assert "absent.csv" in result.stderr and "Traceback" not in result.stderr
    files2 = dict(files, recs=files["train"].with_name("recs.csv"))
    result = runner.invoke(app, args(files2, "--cold-below", "30", "--heavy-above", "3"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "heavy_above" in result.stderr
