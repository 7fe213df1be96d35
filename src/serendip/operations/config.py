"""Monitor thresholds and windows: built-in defaults, overridable by a TOML file.

The file (`settings.monitors_file`, `serendip monitors --config F`) may set any of the window
fields and any monitor's bounds; what it leaves out keeps its default:

```toml
window_hours = 24          # the current window: the last 24 hours
reference_days = 7         # drift compares it with the 7 days before it
attribution_minutes = 60   # an outcome counts for a served list within 60 minutes

[thresholds.click_through]
min = 0.03

[thresholds.category_psi]
max = 0.1
```

A key that is not a setting or a monitor is an error naming it (a typo never silently keeps a
default).

>>> cfg = MonitorConfig()
>>> cfg.bound("empty_list_rate").max
0.05
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serendip.errors import ConfigError, config_error_from

__all__ = [
    "DEFAULT_BOUNDS",
    "MONITORS",
    "Bound",
    "MonitorConfig",
    "MonitorResult",
    "judge",
    "load_monitor_config",
]


class Bound(BaseModel):
    """Allowed range of one monitor's value; None = unbounded on that side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bound:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def violated_by(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        )


#: Every monitor, with what it measures (the API and CLI show these).
MONITORS: dict[str, str] = {
    # live quality, from exposures and outcomes in the current window
    "click_through": "share of served lists with an outcome on one of their items within the "
    "attribution window",
    "catalog_coverage": "share of the live catalog exposed at least once",
    "exposure_gini": "Gini of exposures over the live catalog (1 = one item takes all)",
    "novelty": "mean self-information -log2(popularity) of exposed items, in bits (popularity: "
    "share of the reference window's users who engaged with the item)",
    "oon_exposure_share": "share of exposed items whose author the user does not follow",
    "long_tail_exposure_share": "share of exposed items outside the reference window's head "
    "(the most-engaged items that make up 80% of its events; the bias audit's definition)",
    "oon_engagement_share": "share of attributed outcomes on items whose author the user does "
    "not follow",
    "empty_list_rate": "share of served lists that were empty",
    "cold_start_share": "share of exposed users with no event before the window",
    # drift, current window against the reference window
    "event_rate_ratio": "events per hour in the window / in the reference window",
    "event_type_psi": "PSI of the event-type mix (view, like, share, ...)",
    "item_popularity_psi": "PSI of events over the reference popularity bins of items (traffic "
    "moving to other items)",
    "item_js": "Jensen-Shannon distance (base 2) of the events' item distributions",
    "category_psi": "PSI of the events' category distribution",
    "category_js": "Jensen-Shannon distance (base 2) of the events' category distributions",
}

#: Built-in bounds. PSI: under 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a major one.
DEFAULT_BOUNDS: dict[str, Bound] = {
    "click_through": Bound(min=0.02),
    "catalog_coverage": Bound(min=0.01),
    "exposure_gini": Bound(max=0.95),
    "novelty": Bound(min=1.0),
    "oon_exposure_share": Bound(min=0.10),
    "long_tail_exposure_share": Bound(min=0.05),
    "oon_engagement_share": Bound(min=0.05),
    "empty_list_rate": Bound(max=0.05),
    "cold_start_share": Bound(max=0.5),
    "event_rate_ratio": Bound(min=0.5, max=2.0),
    "event_type_psi": Bound(max=0.2),
    "item_popularity_psi": Bound(max=0.25),
    "item_js": Bound(max=0.6),
    "category_psi": Bound(max=0.2),
    "category_js": Bound(max=0.2),
}


class MonitorConfig(BaseModel):
    """Windows and thresholds of the monitors (defaults: `DEFAULT_BOUNDS`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_hours: float = Field(default=24.0, gt=0)
    reference_days: float = Field(default=7.0, gt=0)
    attribution_minutes: float = Field(default=60.0, ge=0)
    #: quality monitors with fewer served lists report no value (too few to judge)
    min_exposures: int = Field(default=50, ge=1)
    #: drift monitors with fewer events in either window report no value
    min_events: int = Field(default=200, ge=1)
    #: bins of reference popularity for `item_popularity_psi`
    popularity_bins: int = Field(default=10, ge=2, le=100)
    thresholds: dict[str, Bound] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> MonitorConfig:
        unknown = sorted(set(self.thresholds) - set(MONITORS))
        if unknown:
            raise ValueError(
                f"unknown monitor(s) {', '.join(unknown)}; valid: {', '.join(MONITORS)}"
            )
        return self

    def bound(self, name: str) -> Bound:
        """The bound of monitor `name`: the file's, else the built-in one."""
        return self.thresholds.get(name) or DEFAULT_BOUNDS[name]


def load_monitor_config(path: str | Path | None) -> MonitorConfig:
    """The config in TOML file `path` over the defaults (None: the defaults); `ConfigError`
    naming the file and key for a missing file, bad TOML, an unknown key or a bad value."""
    if path is None:
        return MonitorConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"monitors file {p}: {exc.strerror or exc}") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"monitors file {p}: not valid TOML ({exc})") from None
    try:
        return MonitorConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(exc, f"monitors file {p}") from None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One monitor's reading. `value` None: too little data to judge (`note` says why), never
    out of bounds. `n`: the observations it rests on (served lists, events)."""

    name: str
    kind: str  # "quality" or "drift"
    value: float | None
    bound: Bound
    out_of_bounds: bool
    n: int
    note: str = ""

    @property
    def description(self) -> str:
        return MONITORS[self.name]


def judge(
    config: MonitorConfig, name: str, kind: str, value: float | None, n: int, note: str = ""
) -> MonitorResult:
    """The reading of monitor `name` against its bound (a missing value is never out)."""
    bound = config.bound(name)
    out = value is not None and bound.violated_by(value)
    return MonitorResult(name, kind, value, bound, out, n, note)
