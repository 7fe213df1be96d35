"""`serendip generate`: writes the platform, applies overrides, summarises, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from serendip.cli.main import app

runner = CliRunner()


def test_generate_tiny_with_overrides(tmp_path: Path) -> None:
    out = tmp_path / "platform"
    result = runner.invoke(
        app,
        [
            "generate",
            "--preset",
            "tiny",
            "--seed",
            "5",
            "--out",
            str(out),
            "--in-network-share",
            "0.5",
            "--users",
            "200",
            "--set",
            "like_rate=0.05",
            "--set",
            "days=60",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "serendip-platform"
    assert manifest["preset"] == "tiny" and manifest["seed"] == 5
    cfg = manifest["config"]
    assert (cfg["in_network_share"], cfg["n_users"], cfg["like_rate"], cfg["days"]) == (
        0.5,
        200,
        0.05,
        60,
    )
    assert len(pd.read_parquet(out / "users.parquet")) == 200
    assert abs(manifest["in_network_share"] - 0.5) < 0.05
    # One summary line with the counts and where it went.
    summary = [line for line in result.stdout.splitlines() if line.startswith("wrote ")]
    assert len(summary) == 1
    assert "200 users" in summary[0] and str(out) in summary[0] and "in network" in summary[0]
    n = manifest["counts"]["interactions"]
    assert f"{n:,} interactions" in summary[0]


def test_generate_is_deterministic_through_the_cli(tmp_path: Path) -> None:
    args = [
        "generate",
        "--preset",
        "tiny",
        "--seed",
        "2",
        "--quiet",
        "--set",
        "n_interactions=3000",
    ]
    for name in ("a", "b"):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    for file in ("interactions.parquet", "items.parquet", "social.parquet", "manifest.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_generate_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--preset", "tiny", "--set", "colour=blue"], "unknown setting 'colour'"),
        (["--preset", "tiny", "--set", "oops"], "--set expects KEY=VALUE"),
        (["--preset", "tiny", "--in-network-share", "1.5"], "in_network_share"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "-q", *extra])
        assert result.exit_code == 1, (extra, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert message in lines[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "x" / "manifest.json").exists()


def test_generate_needs_an_output_directory() -> None:
    result = runner.invoke(app, ["generate", "--preset", "tiny"])
    assert result.exit_code != 0
    assert "--out" in result.output
