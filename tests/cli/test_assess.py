"""`serendip assess`: the privacy impact assessment of a store, from the command line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from serendip.cli.main import app
from serendip.store import Store

runner = CliRunner()


def test_assess_writes_the_documents(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Store.open(url).close()
    out = tmp_path / "pia"
    res = runner.invoke(app, ["assess", "--db", url, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mitigations in place" in res.output
    for ext in ("md", "html", "json"):
        assert (out / f"privacy-impact-assessment.{ext}").is_file()
    md = (out / "privacy-impact-assessment.md").read_text()
    assert "`events`" in md and "serendip.privacy.dp.private_counts" in md


def test_a_missing_database_is_one_error_line(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["assess", "--db", f"sqlite:///{tmp_path / 'nope.db'}", "--out", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert res.output.startswith("error: ") and "no such database file" in res.output
    assert not (tmp_path / "nope.db").exists()  # nothing created
    bad = runner.invoke(app, ["assess", "--db", "mysql://x/y", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "unsupported database URL scheme" in bad.output
