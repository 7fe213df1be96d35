"""Every knob of the two-stage pipeline in one frozen, validated config.

`PipelineConfig` is the `pipeline` model's `Config`, grouped by stage: `sources` ({name:
`SourceSpec(params, quota)`}: which candidate sources run and how many candidates each may
contribute), `ranker` (`RankerParams`), `rerank` (`RerankParams`), `filters` (`FilterParams`),
`fallback` (`FallbackParams`: the fit-time check against the sources alone).
Groups can be set whole (`{"ranker": {"n_estimators": 50}}`) or by dotted key
(`{"sources.trending.quota": 10}`), which is how the study's flat `SEARCH_SPACE` addresses
them; a typo anywhere fails at once with the valid names.

>>> cfg = PipelineConfig.model_validate({"ranker.learning_rate": 0.1, "rerank.author_cap": 2})
>>> cfg.ranker.learning_rate, cfg.rerank.author_cap
(0.1, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serendip.models.base import Choice, FloatRange, IntRange, ModelConfig, SearchSpace

__all__ = [
    "COLLABORATIVE_CANDIDATES",
    "DEFAULT_SOURCES",
    "RERANK_STEPS",
    "SEARCH_SEEDS",
    "SEARCH_SPACE",
    "FallbackParams",
    "FilterParams",
    "PipelineConfig",
    "RankerParams",
    "RerankParams",
    "RerankStepName",
    "SourceSpec",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Frozen):
    """One candidate source: its constructor parameters and its quota (the most candidates it
    contributes per user to the merged frame; 0 switches it off without removing its entry)."""

    params: dict[str, Any] = Field(default_factory=dict)
    quota: int = Field(default=50, ge=0, le=5000)


def _default_sources() -> dict[str, SourceSpec]:
    return {name: SourceSpec(quota=q) for name, q in DEFAULT_SOURCES.items()}


#: The default sources and quotas: collaborative retrieval carries most of the recall on dense
#: data; social, content, fresh and trending sources add what it cannot see (new items, the
#: network, declared interests), exploration adds out-of-network discovery.
DEFAULT_SOURCES: dict[str, int] = {
    "collaborative": 100,
    "recent-item-knn": 50,
    "in-network": 50,
    "content": 40,
    "fresh-followed": 20,
    "trending": 30,
    "explore": 30,
}


class RankerParams(_Frozen):
    """LightGBM LambdaRank and its training recipe (`serendip.pipeline.ranker.train_ranker`).

    Sources and features are fitted on a past window, labels come from the next one.
    `label_split`: "global" = the last `label_fraction` of training interactions by time (one
    cut for everyone, as the temporal protocol); "per-user" = each user's latest
    `label_fraction`; "random" (also whatever the split, on data without timestamps) = a seeded
    random holdout of that share per user, for random protocols and timestamps that are not
    interaction times (Last.fm's tag dates). `n_windows` > 1 adds label windows further back,
    each `label_fraction` earlier (more training groups for small data). Labels: `label_gains` (event -> grade; a rating >= 4 one
    grade up). Label users (at most `max_label_users`, seeded) are split into training and
    early-stopping groups by `valid_fraction`.
    """

    n_estimators: int = Field(default=300, ge=1, le=5000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    # Small trees, many rows a leaf, half the features per tree, five bagged members (below):
    # label data is a few hundred to a few thousand users, whose noise deep trees fit; a
    # platform with far more label users can afford deeper trees. Chosen on validation folds,
    # see docs/research-log.md (Ranker defaults).
    num_leaves: int = Field(default=3, ge=2, le=1024)
    min_child_samples: int = Field(default=100, ge=1)
    subsample: float = Field(default=1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(default=0.5, gt=0.0, le=1.0)
    reg_lambda: float = Field(default=1.0, ge=0.0)
    early_stopping_rounds: int = Field(default=30, ge=1)
    label_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    valid_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    max_label_users: int = Field(default=3_000, ge=1)
    eval_at: int = Field(default=10, ge=1)
    label_gains: dict[str, int] = Field(
        default_factory=lambda: {
            "view": 1,
            "click": 2,
            "like": 3,
            "comment": 3,
            "share": 4,
            "rating": 1,
        }
    )
    label_split: Literal["global", "per-user", "random"] = "global"
    n_windows: int = Field(default=3, ge=1, le=10)
    #: Training logs with at least this many interactions use one label window whatever
    #: `n_windows` says (its users then fill `max_label_users` alone): every window refits
    #: every source, and a log this large already yields more label users in one window than
    #: the ranker takes (0 = never).
    one_window_from: int = Field(default=5_000_000, ge=0)
    #: Label users need at least this many past interactions: the evaluation protocols (and a
    #: request from a known user) rank for users with a history, while on data where users
    #: arrive and leave (ML100K) most of a time window's label users are new and would train
    #: the ranker on cold-start groups it is never asked about (0 = keep every label user).
    min_history: int = Field(default=1, ge=0)
    #: Extra label grade for a positive the user's network never touched (the candidate's
    #: `in_network` feature is 0), on data with a social graph: the ranker learns to value
    #: out-of-network discovery, not only to allow it at re-ranking (0 = off). 1 by default:
    #: every tuned run on data with a social graph chose it (docs/pipeline-defaults.md).
    oon_label_gain: int = Field(default=1, ge=0, le=10)
    #: Ranker members averaged: 1 = one model early-stopped on the `valid_fraction` users; k > 1
    #: = k models over k user folds, each early-stopped on its own fold (bagging: steadier
    #: where a few hundred groups leave a few dozen early-stopping users).
    n_models: int = Field(default=5, ge=1, le=20)
    #: Boost from a trending prior: init score = -prior_weight x the candidate's log rank by
    #: 7-day decayed count (`serendip.pipeline.ranker.PRIOR_FEATURE`), the trees learn
    #: corrections to it; 0 = off (boosting from zero).
    prior_weight: float = Field(default=0.0, ge=0.0, le=100.0)
    #: LightGBM threads: 1 is fastest on a shared, small machine (OpenMP threads contend).
    num_threads: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _windows_fit(self) -> RankerParams:
        if self.n_windows * self.label_fraction >= 1.0:
            raise ValueError(
                f"n_windows ({self.n_windows}) x label_fraction ({self.label_fraction}) must stay "
                "below 1: the oldest window needs a past"
            )
        return self

    @field_validator("label_gains")
    @classmethod
    def _known_events(cls, v: dict[str, int]) -> dict[str, int]:
        from serendip.data.dataset import EVENT_TYPES

        unknown = set(v) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}; valid: {list(EVENT_TYPES)}")
        if any(g < 0 or g > 30 for g in v.values()):
            raise ValueError("label gains must be integers in 0..30")
        return v


#: The re-ranking steps by name (`RerankParams.steps`), in their default order: relevance
#: shifts (out-of-network boost, popularity penalty), the author cap, the share targets
#: (out-of-network first, then the long tail), the exposure penalty, MMR.
RerankStepName = Literal[
    "oon-boost",
    "popularity-penalty",
    "author-cap",
    "oon-target",
    "tail-quota",
    "exposure-penalty",
    "mmr",
]
RERANK_STEPS: tuple[RerankStepName, ...] = get_args(RerankStepName)


class RerankParams(_Frozen):
    """Re-ranking of the ranker's list (`serendip.pipeline.rerank`). "Relevance" below is the
    ranker's score min-max scaled over the pool, in [0, 1]; every knob is off at its neutral
    value (1, None, 0), and `active_steps` lists the steps that run."""

    #: Maximal marginal relevance trade-off: 1 = pure relevance, lower = more diverse, by the
    #: similarity of `diversity` (the items' category, tags, or both).
    mmr_lambda: float = Field(default=0.85, ge=0.0, le=1.0)
    diversity: Literal["category", "tags", "category+tags"] = "category+tags"
    #: Share of out-of-network items (no followee of the user interacted with them) every
    #: prefix of the list should hold; None = no target.
    oon_target: float | None = Field(default=None, ge=0.0, le=1.0)
    #: At most this many items by one author; None = no cap.
    author_cap: int | None = Field(default=3, ge=1)
    #: How many of the ranker's best candidates enter the re-ranking.
    pool: int = Field(default=100, ge=1, le=5000)
    #: Relevance minus this x the item's log popularity over the catalog's largest (in [0, 1]):
    #: a calibrated popularity debiasing, higher = more long tail and catalog coverage.
    popularity_penalty: float = Field(default=0.0, ge=0.0, le=5.0)
    #: Least share of the list from the long tail (outside the popular head: the most
    #: interacted-with items holding half of the training interactions), on every prefix like
    #: `oon_target`; None = no quota.
    tail_target: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Added to the relevance of out-of-network candidates: a soft preference for discovery;
    #: with `oon_target`, the target picks the side and the boost the order.
    oon_boost: float = Field(default=0.0, ge=0.0, le=10.0)
    #: Relevance minus this x log(1 + times the item was already shown) -- to the users served
    #: before in the same `recommend` call, or by this process with `exposure_half_life`.
    #: Spreads attention over the catalog (reach for creators) at some relevance cost.
    exposure_penalty: float = Field(default=0.0, ge=0.0, le=100.0)
    #: The first positions of every list, exempt from the exposure penalty.
    exposure_free_top: int = Field(default=0, ge=0, le=5000)
    #: None = the exposure count restarts at every call; a number of served lists = one counter
    #: kept across calls, older lists fading with this half-life (runtime state, never saved).
    exposure_half_life: float | None = Field(default=None, gt=0.0)
    #: Order in which the steps act (names from `RERANK_STEPS`), None = the default order. It
    #: counts within a step's kind (`serendip.pipeline.rerank.steps`): which share target a slot
    #: honours first, in which order relevance shifts add up. Every step whose knob is on must
    #: be listed.
    steps: tuple[RerankStepName, ...] | None = None

    def _knobs_on(self) -> dict[RerankStepName, bool]:
        return {
            "oon-boost": self.oon_boost > 0,
            "popularity-penalty": self.popularity_penalty > 0,
            "author-cap": self.author_cap is not None,
            "oon-target": self.oon_target is not None,
            "tail-quota": self.tail_target is not None,
            "exposure-penalty": self.exposure_penalty > 0,
            "mmr": self.mmr_lambda < 1.0,
        }

    def active_steps(self) -> tuple[RerankStepName, ...]:
        """The re-ranking steps that run, in order: those whose knob is on, in `steps` order."""
        on = self._knobs_on()
        order = RERANK_STEPS if self.steps is None else self.steps
        return tuple(name for name in order if on[name])

    @model_validator(mode="after")
    def _steps_listed(self) -> RerankParams:
        if self.steps is None:
            return self
        if len(set(self.steps)) < len(self.steps):
            raise ValueError(f"steps lists a step twice: {list(self.steps)}")
        left_out = [name for name, on in self._knobs_on().items() if on and name not in self.steps]
        if left_out:
            raise ValueError(f"steps leaves out {left_out}, whose knobs are on")
        return self


class FilterParams(_Frozen):
    """Rules no ranking may break. exclude_seen: never recommend what the user interacted with
    (the `recommend(exclude_seen=...)` argument overrides it per call); blocked_authors /
    blocked_items: external IDs never shown; exclude_unpublished: hide items created after the
    request time; exclude_own: hide the user's own items. Removed items are state, not config
    (`PipelineRecommender.remove_items`)."""

    exclude_seen: bool = True
    blocked_authors: tuple[str, ...] = ()
    blocked_items: tuple[str, ...] = ()
    exclude_unpublished: bool = True
    exclude_own: bool = True


class FallbackParams(_Frozen):
    """Never below its best source (`serendip.pipeline.fallback`): at fit, the ranker's newest
    label window (cut the way the model is judged: by time, or at random with
    `ranker.label_split = "random"` or without timestamps) scores the ranker, out of fold,
    against each candidate source ranked alone and popularity, by NDCG@10 over the full
    catalog, separately for known users and for users the fit never saw (history folded in at
    request time, or none: the cold-start path). Where an alternative beats the ranker beyond
    the noise (`serendip.evaluation.metrics.ties`), that segment is served the alternative's
    order, still through the re-ranking, filters and explanations.

    enabled: run the check (off: the ranker serves everyone). max_users: validation users per
    segment (a seeded sample), which bounds the check's cost."""

    enabled: bool = True
    max_users: int = Field(default=300, ge=10, le=100_000)
    #: Serve this order -- a running source's name, or "popularity" -- to every user with a
    #: history (known and fold-in segments) whatever the check finds; users without one keep
    #: the check's choice. What `fit --tune` sets where the user's own validation carving
    #: found a source alone ahead of the ranker (None: the check decides).
    serve: str | None = None


def _expand_dotted(data: Any, defaults: Mapping[str, Any]) -> Any:
    """{"a.b": 1} -> {"a": {"b": 1}}, merged into what is already there (or into the field's
    default, so that "sources.x.quota" changes one quota and keeps the other sources)."""
    if not isinstance(data, Mapping) or not any("." in str(k) for k in data):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if "." not in str(key):
            out[key] = value.model_dump() if isinstance(value, BaseModel) else value
    for key in {str(k).split(".")[0] for k in data if "." in str(k)}:
        if key not in out and key in defaults:
            out[key] = defaults[key]
    for key, value in data.items():
        parts = str(key).split(".")
        if len(parts) == 1:
            continue
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if isinstance(child, BaseModel):
                child = child.model_dump()
            child = dict(child) if isinstance(child, Mapping) else {}
            node[p] = child
            node = child
        node[parts[-1]] = value
    return out


class PipelineConfig(ModelConfig):
    """The `pipeline` model's hyperparameters (see the module docstring)."""

    sources: dict[str, SourceSpec] = Field(default_factory=_default_sources)
    ranker: RankerParams = Field(default_factory=RankerParams)
    rerank: RerankParams = Field(default_factory=RerankParams)
    filters: FilterParams = Field(default_factory=FilterParams)
    fallback: FallbackParams = Field(default_factory=FallbackParams)

    @model_validator(mode="before")
    @classmethod
    def _dotted(cls, data: Any) -> Any:
        return _expand_dotted(
            data, {"sources": {k: v.model_dump() for k, v in _default_sources().items()}}
        )

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, v: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        from serendip.pipeline.sources import SOURCES

        unknown = sorted(set(v) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; valid: {sorted(SOURCES)}")
        if not any(s.quota > 0 for s in v.values()):
            raise ValueError("at least one source needs a quota above 0")
        return v

    @model_validator(mode="after")
    def _served_order_runs(self) -> PipelineConfig:
        serve = self.fallback.serve
        if serve is None:
            return self
        if not self.fallback.enabled:
            raise ValueError("fallback.serve needs fallback.enabled")
        valid = [*self.quotas(), "popularity"]
        if serve not in valid:
            raise ValueError(f"fallback.serve '{serve}' is not a running source; valid: {valid}")
        return self

    def quotas(self) -> dict[str, int]:
        """Source name -> quota, for the sources that run (quota > 0), in config order."""
        return {name: s.quota for name, s in self.sources.items() if s.quota > 0}


#: The study's search space over the pipeline (dotted keys into the nested groups).
SEARCH_SPACE: SearchSpace = {
    "ranker.n_estimators": IntRange(50, 600, log=True),
    "ranker.learning_rate": FloatRange(0.01, 0.2, log=True),
    "ranker.num_leaves": IntRange(3, 63, log=True),
    "ranker.min_child_samples": IntRange(5, 200, log=True),
    "ranker.n_models": Choice((1, 5)),
    "ranker.label_fraction": FloatRange(0.1, 0.3),
    "ranker.n_windows": IntRange(1, 3),
    "ranker.prior_weight": Choice((0.0, 0.25, 0.5, 1.0)),
    "ranker.oon_label_gain": Choice((0, 1, 2)),
    "rerank.mmr_lambda": FloatRange(0.5, 1.0),
    "rerank.author_cap": Choice((None, 1, 2, 3, 5)),
    "rerank.oon_target": Choice((None, 0.2, 0.3, 0.5)),
    "rerank.popularity_penalty": FloatRange(0.0, 1.0),
    "rerank.tail_target": Choice((None, 0.2, 0.3, 0.5)),
    "rerank.oon_boost": Choice((0.0, 0.05, 0.1, 0.2)),
    "rerank.exposure_penalty": Choice((0.0, 0.1, 0.3)),
    "rerank.exposure_free_top": Choice((0, 3, 5)),
    "sources.collaborative.quota": IntRange(20, 300, log=True),
    "sources.explore.quota": IntRange(0, 100),
}

#: Settings `fit --tune` tries right after the defaults (`tune_model`'s `seeds`), before the
#: sampler's random start: one or two knobs moved from the defaults each. Why: a pipeline trial
#: takes 10-110 s on one core, so a budget holds a handful of trials, and in the floors
#: benchmark (benchmarks/results/pipeline_floors.md) every randomly started trial on the random
#: splits scored 20-65% below the defaults on validation (ML100K random: defaults 0.277, the
#: six sampled trials 0.157-0.224; Last.fm: 0.174 against 0.060-0.139). Seeds naming
#: out-of-network knobs run only where the data has a social graph (`tuning.searchable`),
#: where validation ties go to out-of-network hits (16.4).
SEARCH_SEEDS: tuple[dict[str, Any], ...] = (
    {"ranker.oon_label_gain": 0},
    {"rerank.oon_boost": 0.05},
    {"ranker.oon_label_gain": 2, "rerank.oon_boost": 0.1},
    {"ranker.prior_weight": 0.5},
    {"rerank.popularity_penalty": 0.3},
    {"ranker.n_models": 1, "ranker.num_leaves": 7},
)

#: Zoo models `fit --tune` tries as the collaborative source before the pipeline's own search
#: (`fit_tuned.tune_collaborative`), with the parameters the stage fixes: retrieval first, each
#: tuned alone on the same carving, and the best by validation NDCG@10 offered to the search as
#: `sources.collaborative`. The ranker learns from what the sources retrieve, and the default
#: iALS is not the best single model on every dataset (docs/research-log.md, "The collaborative
#: source under the ranker"). The dense models are capped at 10,000 items (EASE) or users
#: (user-EASE): beyond that one trial costs minutes and gigabytes, and they drop out at their
#: first trial with the model's own capacity error.
COLLABORATIVE_CANDIDATES: dict[str, dict[str, Any]] = {
    "ials": {},
    "puresvd": {},
    "user-ease": {"max_users": 10_000},
    "ease": {"max_items": 10_000},
    "item-knn": {},
}
