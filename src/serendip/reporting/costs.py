"""The costs file: prices and assumptions of the cost model, as a validated TOML document.

The default ships as ``serendip/reporting/costs.toml`` (read it for every field's meaning);
`load_costs(path)` reads another. Unknown keys and bad values raise `ConfigError` naming them.
`Costs.raw` keeps the parsed document, so a report cell can point at the value it used
(``costs:machines/vm8/usd_per_hour``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serendip.errors import ConfigError, config_error_from

__all__ = [
    "BuyGoogle",
    "BuyPersonalize",
    "Costs",
    "Decision",
    "Machine",
    "default_costs_path",
    "load_costs",
    "tiered",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Priced(_Strict):
    source: str
    checked: str
    confirmed: bool


class Machine(Priced):
    label: str
    cores: int = Field(gt=0)
    memory_gb: float = Field(gt=0)
    gpus: int = Field(default=0, ge=0)
    usd_per_hour: float = Field(ge=0)


class Storage(Priced):
    label: str
    usd_per_gb_month: float = Field(ge=0)


class Tier(_Strict):
    up_to: float | None = Field(default=None, gt=0)
    usd_per_1000: float | None = Field(default=None, ge=0)
    usd_per_tps_hour: float | None = Field(default=None, ge=0)

    @property
    def price(self) -> float:
        return float(
            self.usd_per_1000 if self.usd_per_1000 is not None else self.usd_per_tps_hour or 0.0
        )


def _check_tiers(tiers: tuple[Tier, ...], what: str) -> None:
    if not tiers:
        raise ValueError(f"{what}: at least one tier")
    bounds = [t.up_to for t in tiers[:-1]]
    if any(b is None for b in bounds) or tiers[-1].up_to is not None:
        raise ValueError(f"{what}: every tier but the last has up_to; the last has none")
    if bounds != sorted(bounds):  # type: ignore[type-var]
        raise ValueError(f"{what}: up_to must increase")


class BuyGoogle(Priced):
    name: str
    note: str = ""
    training_usd_per_node_hour: float = Field(ge=0)
    training_node_hours_per_fit_cpu_hour: float = Field(ge=0)
    prediction_tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _tiers(self) -> BuyGoogle:
        _check_tiers(self.prediction_tiers, "prediction_tiers")
        if any(t.usd_per_1000 is None for t in self.prediction_tiers):
            raise ValueError("prediction_tiers: every tier needs usd_per_1000")
        return self


class BuyPersonalize(Priced):
    name: str
    note: str = ""
    data_usd_per_gb: float = Field(ge=0)
    training_usd_per_hour: float = Field(ge=0)
    training_hours_per_fit_cpu_hour: float = Field(ge=0)
    min_provisioned_tps: float = Field(ge=0)
    tps_hour_tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _tiers(self) -> BuyPersonalize:
        _check_tiers(self.tps_hour_tiers, "tps_hour_tiers")
        if any(t.usd_per_tps_hour is None for t in self.tps_hour_tiers):
            raise ValueError("tps_hour_tiers: every tier needs usd_per_tps_hour")
        return self


class Buy(_Strict):
    google: BuyGoogle
    personalize: BuyPersonalize


class Traffic(_Strict):
    daily_active_share: float = Field(gt=0, le=1)
    requests_per_active_user_per_day: float = Field(ge=0)
    peak_to_mean: float = Field(ge=1)
    events_per_active_user_per_day: float = Field(ge=0)
    bytes_per_event: float = Field(gt=0)
    retrains_per_month: float = Field(ge=0)
    precompute_refreshes_per_month: float = Field(ge=0)


class Serving(_Strict):
    replicas_minimum: int = Field(ge=1)
    headroom: float = Field(ge=1)
    processes_per_core: float = Field(gt=0)
    serving_machine: str
    memory_per_process_factor: float = Field(gt=0)


class Training(_Strict):
    memory_headroom: float = Field(ge=1)
    machines: tuple[str, ...] = Field(min_length=1)
    storage_replicas: float = Field(ge=1)


class Engineering(_Strict):
    usd_per_person_month: float = Field(ge=0)
    maintenance_person_months_per_month: float = Field(ge=0)
    buy_integration_person_months: float = Field(ge=0)
    buy_maintenance_person_months_per_month: float = Field(ge=0)
    build_person_months: dict[str, float]

    @model_validator(mode="after")
    def _default(self) -> Engineering:
        if "default" not in self.build_person_months:
            raise ValueError("build_person_months needs a 'default'")
        if any(v < 0 for v in self.build_person_months.values()):
            raise ValueError("build_person_months: effort cannot be negative")
        return self

    def effort(self, family: str) -> tuple[str, float]:
        key = family if family in self.build_person_months else "default"
        return key, self.build_person_months[key]


class Decision(_Strict):
    target_users: int = Field(gt=0)
    dataset: str = ""
    protocol: str = ""
    accuracy_tolerance: float = Field(ge=0, lt=1)
    cost_tie: float = Field(ge=0)
    buy_margin: float = Field(ge=0, lt=1)
    require_self_hosting: bool = False


class Costs(_Strict):
    version: str
    horizon_months: int = Field(gt=0)
    hours_per_month: float = Field(gt=0)
    traffic: Traffic
    serving: Serving
    training: Training
    engineering: Engineering
    machines: dict[str, Machine]
    storage: Storage
    buy: Buy
    decision: Decision
    path: str = ""
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _machines_named(self) -> Costs:
        names = [self.serving.serving_machine, *self.training.machines]
        unknown = [n for n in names if n not in self.machines]
        if unknown:
            raise ValueError(
                f"unknown machine {unknown[0]!r} (defined: {', '.join(self.machines)})"
            )
        return self


def tiered(quantity: float, tiers: tuple[Tier, ...], per: float = 1.0) -> float:
    """Cost of `quantity` units under graduated `tiers` (each tier's price per `per` units)."""
    cost, low = 0.0, 0.0
    for tier in tiers:
        high = tier.up_to if tier.up_to is not None else float("inf")
        if quantity <= low:
            break
        cost += (min(quantity, high) - low) * tier.price / per
        low = high
    return cost


def default_costs_path() -> Path:
    return Path(str(resources.files("serendip.reporting") / "costs.toml"))


def parse_costs(doc: Mapping[str, Any], path: str = "<costs>") -> Costs:
    """A validated `Costs` from a parsed TOML document."""
    try:
        return Costs.model_validate({**doc, "path": path, "raw": dict(doc)})
    except ValidationError as exc:
        raise config_error_from(exc, f"costs file {path}") from None


def load_costs(path: Path | str | None = None) -> Costs:
    """The costs file at `path` (default: the shipped costs.toml)."""
    p = Path(path) if path is not None else default_costs_path()
    if not p.is_file():
        raise ConfigError(f"costs file not found: {p}")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"costs file {p}: not valid TOML: {exc}") from None
    return parse_costs(doc, str(p))
