"""The costs file: the shipped one loads, bad files fail with the key named, tiers price right."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from serendip.errors import ConfigError
from serendip.reporting.costs import default_costs_path, load_costs, tiered


def test_shipped_costs_load_with_sources() -> None:
    costs = load_costs()
    g = costs.buy.google
    assert [t.usd_per_1000 for t in g.prediction_tiers] == [0.27, 0.18, 0.10]
    assert g.training_usd_per_node_hour == 2.50 and g.confirmed
    assert costs.buy.personalize.source.startswith("https://aws.amazon.com/personalize/pricing")
    assert all(m.source and m.checked for m in costs.machines.values())


def test_graduated_tiers() -> None:
    tiers = load_costs().buy.google.prediction_tiers
    # 25M predictions: 20M at $0.27 and 5M at $0.18 per 1,000
    assert tiered(25_000_000, tiers, 1000) == pytest.approx(20_000 * 0.27 + 5_000 * 0.18)
    assert tiered(400_000_000, tiers, 1000) == pytest.approx(
        20_000 * 0.27 + 280_000 * 0.18 + 100_000 * 0.10
    )
    assert tiered(0, tiers, 1000) == 0.0


def _write(tmp_path: Path, old: str, new: str) -> Path:
    text = default_costs_path().read_text()
    assert old in text
    path = tmp_path / "c.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "horizon_months = 36",
            "horizon_months = 36\nhorizon_years = 3",
            "unknown setting 'horizon_years'",
        ),
        ("usd_per_hour = 0.384", "usd_per_hour = -1", "machines.vm8.usd_per_hour"),
        ('serving_machine = "vm8"', 'serving_machine = "vm99"', "unknown machine 'vm99'"),
        (
            "{ usd_per_1000 = 0.10 },",
            "{ up_to = 400_000_000, usd_per_1000 = 0.10 },",
            "the last has none",
        ),
    ],
)
def test_bad_costs_name_the_problem(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_costs(_write(tmp_path, old, new))
    assert message in str(err.value)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_costs(path)
    with pytest.raises(ConfigError, match="not found"):
        load_costs(tmp_path / "absent.toml")


def test_raw_document_kept() -> None:
    costs = load_costs()
    assert costs.raw == tomllib.loads(default_costs_path().read_text())
