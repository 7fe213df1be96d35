"""What a study runs: a validated, frozen `StudyConfig`, read from TOML or a shipped profile.

A study is the cross product datasets x protocols x models (zoo models, peers, the production
pipeline). TOML: top-level `seed`, `k`, `metric`, `quick`; tables `[[datasets]]` (`source`:
ml-100k | lastfm-2k | synthetic:tiny|small | a path; `protocols`: names or tables such as
`{method = "cold-users", user_fraction = 0.1}`), `[[models]]` (`name`, `params`, `trials`,
`timeout_s`), `[[peers]]`, `[pipeline]` and `[dp]` (the differential-privacy sweep,
`DPSweepSpec`); the shipped `profiles/quick.toml` and
`profiles/full.toml` use them all. Everything is checked before anything runs; a mistake
raises `ConfigError` naming the key (`datasets[0].protocols[1].method: ...`).

>>> cfg = load_profile("quick")
>>> cfg.profile, cfg.k
('quick', (5, 10, 20))
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serendip.errors import ConfigError, config_error_from

__all__ = [
    "DEFAULT_PROTOCOL_PARAMS",
    "DP_CLIP_ONLY_EPSILON",
    "PROFILES",
    "PROTOCOLS",
    "DPSweepSpec",
    "DatasetSpec",
    "ModelSpec",
    "PipelineSpec",
    "ProtocolSpec",
    "StudyConfig",
    "load_config",
    "load_profile",
    "parse_config",
]

#: Split methods a study knows (names of `serendip.evaluation.splits.SPLIT_METHODS`).
PROTOCOLS: tuple[str, ...] = ("random", "temporal", "leave-last", "cold-users", "cold-items")

#: Parameters each protocol uses unless the config overrides them. `random` is the issue 3
#: protocol: per-user 80/20 holdout, seed 42, users with < 5 items kept whole in train.
DEFAULT_PROTOCOL_PARAMS: dict[str, dict[str, Any]] = {
    "random": {"test_fraction": 0.2, "seed": 42, "min_interactions": 5},
    "temporal": {"test_fraction": 0.2},
    "leave-last": {"n": 1, "seed": 42, "min_interactions": 5},
    "cold-users": {
        "user_fraction": 0.1,
        "fold_in_fraction": 0.5,
        "seed": 42,
        "min_interactions": 5,
    },
    "cold-items": {"item_fraction": 0.1},
}

#: Shipped profiles (package data under `profiles/`).
PROFILES: tuple[str, ...] = ("quick", "full", "privacy")

#: Named sources resolved under the shared data directory.
REAL_SOURCES: tuple[str, ...] = ("ml-100k", "lastfm-2k")
SYNTHETIC_PRESETS: tuple[str, ...] = ("tiny", "small")

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _split_params(method: str) -> set[str]:
    from serendip.evaluation.splits import SPLIT_METHODS

    sig = inspect.signature(SPLIT_METHODS[method])
    return {p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


class ProtocolSpec(BaseModel):
    """One split protocol of a dataset: a method of `SPLIT_METHODS` and its parameters.

    `name` (the cell directory; default the method) lets one dataset use one method twice
    with different parameters. `params` are merged over `DEFAULT_PROTOCOL_PARAMS[method]`.
    """

    model_config = _FROZEN

    method: Literal["random", "temporal", "leave-last", "cold-users", "cold-items"]
    name: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        # TOML: "random" or {method = "cold-users", user_fraction = 0.1}
        if isinstance(data, str):
            return {"method": data}
        if isinstance(data, Mapping):
            known = {"method", "name", "params"}
            extra = {k: v for k, v in data.items() if k not in known}
            out = {k: v for k, v in data.items() if k in known}
            if extra:
                out["params"] = {**dict(data.get("params") or {}), **extra}
            return out
        return data

    @model_validator(mode="after")
    def _check(self) -> ProtocolSpec:
        valid = _split_params(self.method)
        unknown = sorted(set(self.params) - valid)
        if unknown:
            raise ValueError(
                f"protocol '{self.method}' does not take {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(valid))}"
            )
        if not self.name:
            object.__setattr__(self, "name", self.method)
        return self

    @property
    def split_params(self) -> dict[str, Any]:
        """Parameters passed to `split_dataset`: the defaults, then the config's."""
        return {**DEFAULT_PROTOCOL_PARAMS[self.method], **self.params}


class DatasetSpec(BaseModel):
    """One dataset: where it comes from and the protocols it is split by.

    source: "ml-100k" / "lastfm-2k" (under the shared data directory), "synthetic:tiny" /
    "synthetic:small" (generated with the study's seed into the study's cache), or a path any
    `serendip.data.loaders.load_source` reads.
    """

    model_config = _FROZEN

    name: str = ""
    source: str
    protocols: tuple[ProtocolSpec, ...] = (ProtocolSpec(method="random"),)

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("empty source")
        if v.startswith("synthetic:") and v.split(":", 1)[1] not in SYNTHETIC_PRESETS:
            raise ValueError(
                f"unknown synthetic preset '{v.split(':', 1)[1]}'; valid: "
                + ", ".join(f"synthetic:{p}" for p in SYNTHETIC_PRESETS)
            )
        return v

    @model_validator(mode="after")
    def _defaults(self) -> DatasetSpec:
        if not self.name:
            object.__setattr__(self, "name", default_dataset_name(self.source))
        _check_name(self.name, "dataset name")
        if not self.protocols:
            raise ValueError("a dataset needs at least one protocol")
        names = [p.name for p in self.protocols]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"protocol name(s) used twice: {', '.join(sorted(dup))}")
        return self


def default_dataset_name(source: str) -> str:
    """Directory name of a dataset's cells when the config gives none."""
    if source.startswith("synthetic:"):
        return "synthetic-" + source.split(":", 1)[1]
    if source in REAL_SOURCES:
        return source
    return Path(source).name or "dataset"


def _check_name(name: str, what: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{what} '{name}' cannot be a directory name")


class ModelSpec(BaseModel):
    """One model (or peer) of the study and its tuning budget.

    params: base hyperparameters (over the class defaults, and over `quick_params` in a quick
    study). trials: optuna trials on the validation split (0 or 1 = no search: the base
    parameters are used). timeout_s: tuning time budget in seconds (optuna stops starting
    new trials after it; a running fit is not interrupted).
    """

    model_config = _FROZEN

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    trials: int = Field(default=0, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)


class PipelineSpec(BaseModel):
    """The production pipeline: studied when `enabled` and registered as "pipeline".

    protocol_params: protocol name -> parameters merged over `params` on that protocol's cells.
    The pipeline learns its ranker from a split of its own training data, which should mirror
    the protocol it is judged on: on a random holdout, random label windows (the default time
    windows teach it to predict the next period, which the random protocol never asks); the
    same on cold users, whose fold-in and test items are a random division of their items
    (and the pipeline's fallback check, cut as its label windows, then judges it so too).
    MovieLens 100K cold users, NDCG@10: 0.276 with time windows, 0.596 with random ones
    (popularity 0.384, EASE 0.604)."""

    model_config = _FROZEN

    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    protocol_params: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {
            "random": {"ranker.label_split": "random"},
            "cold-users": {"ranker.label_split": "random"},
        }
    )
    trials: int = Field(default=0, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)

    def spec_for(self, protocol: str) -> ModelSpec:
        """The pipeline's ModelSpec on `protocol`'s cells."""
        params = {**self.params, **self.protocol_params.get(protocol, {})}
        return ModelSpec(
            name="pipeline", params=params, trials=self.trials, timeout_s=self.timeout_s
        )


#: The epsilon of the sweep's "clip only" point: the per-user bound with negligible noise, so
#: the cost of bounding contributions shows apart from the cost of the noise.
DP_CLIP_ONLY_EPSILON = 1e12


class DPSweepSpec(BaseModel):
    """The differential-privacy sweep: the accuracy (and audit) cost of the DP option.

    Each of `models` (models with a `dp_epsilon` parameter; `params` may set `dp_mechanism`,
    `dp_max_per_user`, ...) is fitted on each dataset x protocol of `protocols` (names; empty =
    every dataset's first protocol that is not a cold-start one) once without the option
    ("none"), once per epsilon of `epsilons`, and with `clip_only` once with the per-user bound
    but negligible noise (epsilon `DP_CLIP_ONLY_EPSILON`). No tuning: every point has the same
    parameters but the budget. Results: `results.json` "dp_sweep", `dp_sweep.csv`, and the
    leaderboard's privacy section.
    """

    model_config = _FROZEN

    enabled: bool = False
    epsilons: tuple[float, ...] = (0.1, 1.0, 10.0)
    clip_only: bool = True
    models: tuple[ModelSpec, ...] = (
        ModelSpec(name="popularity"),
        ModelSpec(name="item-knn", params={"weighting": "none", "dp_mechanism": "gaussian"}),
    )
    protocols: tuple[str, ...] = ()

    @field_validator("epsilons")
    @classmethod
    def _eps(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not (e > 0) or e == float("inf") for e in v):
            raise ValueError(f"epsilons must be positive finite numbers, got {list(v)}")
        return tuple(sorted(set(v)))

    @field_validator("models")
    @classmethod
    def _dp_models(cls, v: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        from serendip.models.registry import MODELS, get_model_class

        for spec in v:
            if spec.name not in MODELS:
                raise ValueError(f"unknown model '{spec.name}'; valid: {', '.join(MODELS)}")
            fields = get_model_class(spec.name).Config.model_fields
            if "dp_epsilon" not in fields:
                able = [n for n in MODELS if "dp_epsilon" in get_model_class(n).Config.model_fields]
                raise ValueError(
                    f"model '{spec.name}' has no differential-privacy option; "
                    f"models with one: {', '.join(able)}"
                )
            if "dp_epsilon" in spec.params:
                raise ValueError(f"model '{spec.name}': the sweep sets dp_epsilon itself")
        _no_duplicates([s.name for s in v], "dp model")
        return v

    def points(self) -> tuple[tuple[str, float | None], ...]:
        """(label, dp_epsilon) of every point: "none", then "clip only", then each epsilon."""
        out: list[tuple[str, float | None]] = [("none", None)]
        if self.clip_only:
            out.append(("clip", DP_CLIP_ONLY_EPSILON))
        out += [(f"{e:g}", e) for e in self.epsilons]
        return tuple(out)


class StudyConfig(BaseModel):
    """A whole study. See the module docstring for the TOML shape.

    seed: seeds tuning and the latency sample (protocol seeds are their own parameters).
    k: cutoffs of every metric. metric: what tuning maximises on validation.
    quick: start every model from its class's `quick_params` (the quick profile).
    latency_users: users timed one at a time for p50/p99 latency.
    write_splits: write each split's files (train/test/items/social CSV) under
    `OUT/splits/<dataset>/<protocol>/`, so `serendip evaluate` can be rerun on a cell's recs.
    """

    model_config = _FROZEN

    profile: str = "custom"
    description: str = ""
    seed: int = Field(default=42, ge=0)
    k: tuple[int, ...] = (5, 10, 20)
    metric: str = "ndcg@10"
    quick: bool = False
    latency_users: int = Field(default=100, ge=1)
    write_splits: bool = True
    datasets: tuple[DatasetSpec, ...]
    models: tuple[ModelSpec, ...] = ()
    peers: tuple[ModelSpec, ...] = ()
    pipeline: PipelineSpec = PipelineSpec()
    dp: DPSweepSpec = DPSweepSpec()

    @field_validator("k")
    @classmethod
    def _ks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(x < 1 for x in v):
            raise ValueError(f"k must be positive integers, got {list(v)}")
        return tuple(sorted(set(v)))

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        from serendip.evaluation.evaluate import METRIC_DESCRIPTIONS

        base, _, cut = v.partition("@")
        if base not in METRIC_DESCRIPTIONS or not cut.isdigit():
            raise ValueError(f"metric must be NAME@K with NAME in {', '.join(METRIC_DESCRIPTIONS)}")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        from serendip.models.registry import MODELS

        for spec in v:
            if spec.name not in MODELS:
                raise ValueError(f"unknown model '{spec.name}'; valid: {', '.join(MODELS)}")
        _no_duplicates([s.name for s in v], "model")
        return v

    @field_validator("peers")
    @classmethod
    def _peers(cls, v: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        peers = available_peers()
        for spec in v:
            if spec.name not in peers:
                raise ValueError(f"unknown peer '{spec.name}'; valid: {', '.join(peers)}")
        _no_duplicates([s.name for s in v], "peer")
        return v

    @model_validator(mode="after")
    def _unique(self) -> StudyConfig:
        _no_duplicates([d.name for d in self.datasets], "dataset")
        if not self.datasets:
            raise ValueError("a study needs at least one dataset")
        names = {p.name for d in self.datasets for p in d.protocols}
        unknown = sorted(set(self.dp.protocols) - names)
        if unknown:
            raise ValueError(
                f"dp.protocols names no protocol of the datasets: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(names))}"
            )
        return self

    def dp_protocols(self, dataset: DatasetSpec) -> tuple[ProtocolSpec, ...]:
        """The protocols of `dataset` the DP sweep runs on (none when it is disabled)."""
        if not self.dp.enabled:
            return ()
        if self.dp.protocols:
            return tuple(p for p in dataset.protocols if p.name in self.dp.protocols)
        warm = [p for p in dataset.protocols if p.method not in ("cold-users", "cold-items")]
        return tuple(warm[:1])


def _no_duplicates(names: Sequence[str], what: str) -> None:
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ValueError(f"{what} name(s) listed twice: {', '.join(dup)}")


def available_peers() -> Mapping[str, Any]:
    """`peers.PEERS`, imported on first use (peers.py pulls in scipy and the model base)."""
    from serendip.evaluation.study.peers import PEERS

    return PEERS


# --------------------------------------------------------------------------- loading
def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[_check(), ProtocolSpec]",) or "[" in str(part):
            continue  # pydantic's validator frames, not keys
        else:
            out += f".{part}" if out else str(part)
    return out or "config"


def parse_config(data: Mapping[str, Any], *, source: str = "study config") -> StudyConfig:
    """Validate a config dict (as read from TOML); errors name the key."""
    try:
        return StudyConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise config_error_from(exc, source, location=_loc) from None


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None


def load_config(path: str | Path) -> StudyConfig:
    """A study config from a TOML file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: study config not found")
    data = _read_toml(p.read_text(encoding="utf-8"), str(p))
    data.setdefault("profile", p.stem)
    return parse_config(data, source=str(p))


def load_profile(name: str) -> StudyConfig:
    """A shipped profile ("quick", "full" or "privacy")."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile '{name}'; valid: {', '.join(PROFILES)}")
    text = (
        resources.files("serendip.evaluation.study")
        .joinpath("profiles", f"{name}.toml")
        .read_text(encoding="utf-8")
    )
    data = _read_toml(text, f"profile {name}")
    data["profile"] = name
    return parse_config(data, source=f"profile {name}")
