"""The experiment specification: the JSON kept in the store's `experiments.spec` column.

`ExperimentSpec` is a frozen pydantic model; `parse_spec` turns a stored or posted dict into
one, raising a `ConfigError` that names every problem. Event types are the store's
(`serendip.data.dataset.EVENT_TYPES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serendip.data.dataset import EVENT_TYPES
from serendip.errors import ConfigError, DataError, config_error_from
from serendip.experiments.assignment import check_shares, new_salt

__all__ = ["ExperimentSpec", "Guardrail", "VariantSpec", "parse_spec"]


def _event_type(v: str) -> str:
    if v not in EVENT_TYPES:
        raise ValueError(f"unknown event type '{v}'; valid: {', '.join(EVENT_TYPES)}")
    return v


class VariantSpec(BaseModel):
    """One arm: its name, its traffic share (None: split equally with the other arms) and the
    model version it serves (None: the active model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    share: float | None = Field(default=None, gt=0, le=1)
    model_version: str | None = None


class Guardrail(BaseModel):
    """A metric that must not get significantly worse: the rate of `metric` (an event type) per
    user; `bad` says which direction is worse ("decrease" for engagement such as likes,
    "increase" for negative feedback). A bare string in JSON means `{"metric": s}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    bad: Literal["decrease", "increase"] = "decrease"

    _check_metric = field_validator("metric")(_event_type)


class ExperimentSpec(BaseModel):
    """What an experiment tests and how it is judged.

    - `kind`: "ab" (users split between variants) or "interleaving" (two rankers interleaved
      in one list by team draft; exactly two variants, shares unused).
    - `variants`: the first is the control; shares > 0 summing to 1 (or all omitted: equal).
    - `primary_metric`: an event type attributed to exposures, e.g. "click".
    - `metric`: per user, "conversion" (had at least one attributed primary outcome: a
      proportion) or "rate" (attributed primary outcomes per exposure).
    - `guardrails`: metrics that must not get worse (see `Guardrail`).
    - `window_s`: attribution window in seconds: an outcome counts for an exposure when the
      exposed user acts on an exposed item within `window_s` after it.
    - `salt`: the assignment salt (fresh by default); `alpha`, `power`: test level and power.
    - `sequential`: judge by a sequential test (peeking allowed) instead of the fixed-horizon
      one. `sequential_method` "msprt": the always-valid mSPRT p-value, for open-ended tests
      (conservative at a few looks: its guarantee holds under continuous monitoring);
      `msprt_tau`: the mixture's standard deviation on the absolute difference (None:
      `min_detectable_lift` or 5% of the pooled rate). "alpha-spending": a group-sequential
      test with Lan-DeMets `spending` over daily looks (boundaries for the looks' correlation
      estimated from the per-user data), alpha overall for a planned size: `planned_users` in
      all variants (None: the calculator's size from `baseline_rate` and
      `min_detectable_lift`).
    - `min_detectable_lift`, `baseline_rate`: relative lift to detect and the control's
      expected rate, for the sample-size calculator.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ab", "interleaving"] = "ab"
    variants: list[VariantSpec] = Field(min_length=1)
    primary_metric: str = "click"
    metric: Literal["conversion", "rate"] = "conversion"
    guardrails: list[Guardrail] = Field(default_factory=list)
    window_s: float = Field(default=86400.0, gt=0)
    salt: str = Field(default_factory=new_salt, min_length=1, max_length=128)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    sequential: bool = False
    sequential_method: Literal["msprt", "alpha-spending"] = "msprt"
    msprt_tau: float | None = Field(default=None, gt=0)
    spending: Literal["obrien-fleming", "pocock"] = "obrien-fleming"
    planned_users: int | None = Field(default=None, gt=1)
    min_detectable_lift: float | None = Field(default=None, gt=0)
    baseline_rate: float | None = Field(default=None, gt=0, lt=1)
    surface: str | None = None

    _check_primary = field_validator("primary_metric")(_event_type)

    @field_validator("guardrails", mode="before")
    @classmethod
    def _bare_guardrails(cls, v: object) -> object:
        if isinstance(v, list):
            return [{"metric": g} if isinstance(g, str) else g for g in v]
        return v

    @field_validator("window_s")
    @classmethod
    def _finite_window(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @model_validator(mode="after")
    def _check_variants(self) -> ExperimentSpec:
        if self.kind == "interleaving" and len(self.variants) != 2:
            raise ValueError(
                f"an interleaving experiment needs exactly two variants, got {len(self.variants)}"
            )
        if self.kind == "ab" and len(self.variants) < 2:
            raise ValueError("an A/B experiment needs at least two variants (control first)")
        given = [v.share is not None for v in self.variants]
        if any(given) and not all(given):
            raise ValueError("give every variant a share, or none (equal shares)")
        try:
            check_shares(self.shares)
        except DataError as e:
            raise ValueError(e.problem) from None
        if (
            self.sequential
            and self.sequential_method == "alpha-spending"
            and self.planned_users is None
            and (self.baseline_rate is None or self.min_detectable_lift is None)
        ):
            raise ValueError(
                "alpha-spending needs the planned size: planned_users, or baseline_rate and "
                "min_detectable_lift for the calculator"
            )
        return self

    def planned_total(self) -> int | None:
        """Users planned in all variants (alpha spending's full information): `planned_users`,
        else the calculator's size for the smallest variant against the control."""
        if self.planned_users is not None:
            return self.planned_users
        if self.baseline_rate is None or self.min_detectable_lift is None:
            return None
        from serendip.experiments.power import sample_size

        shares = [s for _, s in self.shares]
        n_control = sample_size(
            self.baseline_rate,
            self.min_detectable_lift,
            self.alpha,
            self.power,
            (shares[0], min(shares[1:])),
        )
        return math.ceil(n_control / shares[0])

    @property
    def shares(self) -> list[tuple[str, float]]:
        """(name, share) per variant, control first; equal shares when none were given."""
        n = len(self.variants)
        return [(v.name, v.share if v.share is not None else 1.0 / n) for v in self.variants]

    @property
    def control(self) -> str:
        """The first variant's name: lifts are measured against it."""
        return self.variants[0].name

    def to_json(self) -> dict[str, object]:
        """The dict to store in `experiments.spec` (round-trips through `parse_spec`)."""
        return self.model_dump(mode="json")


def parse_spec(data: Mapping[str, object]) -> ExperimentSpec:
    """An `ExperimentSpec` from JSON data; ConfigError naming every problem otherwise.

    >>> parse_spec({"variants": [{"name": "control"}, {"name": "treatment"}]}).shares
    [('control', 0.5), ('treatment', 0.5)]
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"experiment spec: expected a JSON object, got {type(data).__name__}")
    try:
        return ExperimentSpec.model_validate(dict(data))
    except ValidationError as e:
        raise config_error_from(e, "experiment spec") from None
