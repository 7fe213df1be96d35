"""The typed result of `analyze_dataset`: one frozen dataclass per report section.

Every number the HTML report shows lives here, so `DatasetAnalysis.to_dict()` (the
`analysis.json` file) is the complete, machine-readable record. Conventions:

- counts are `int`; shares and ratios are `float` in [0, 1] (not percentages);
- times are epoch seconds (UTC) with an ISO 8601 twin where a person reads them;
- a statistic that cannot be computed (an empty set, a division by zero) is `None`, never NaN;
- a section a dataset cannot have (no social graph, no timestamps) is `None`, and
  `DatasetAnalysis.absent[section]` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from serendip.jsonsafe import jsonable

__all__ = [
    "ActivityStats",
    "ColdCount",
    "ColdStartStats",
    "Conversion",
    "Counts",
    "DatasetAnalysis",
    "Distribution",
    "EventFunnel",
    "Growth",
    "Histogram",
    "InNetworkStats",
    "MetadataStats",
    "QualityIssue",
    "Severity",
    "SocialStats",
    "TemporalStats",
    "ValueStats",
    "jsonable",
]

Severity = Literal["error", "warning", "info"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a numeric sample (activity per user, degree, text length, ...).

    `quantiles` maps "p1", "p5", ..., "p99" to the linear-interpolated percentile.
    """

    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    median: float | None
    quantiles: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class Histogram:
    """Bin counts: `counts[k]` values fall in [edges[k], edges[k + 1]) (the last bin is closed).

    `log_scale` says the edges are spaced geometrically (plot the x axis in log scale).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    log_scale: bool = False


@dataclass(frozen=True, slots=True)
class Counts:
    """Sizes. `density` = distinct (user, item) pairs / (n_users * n_items); `density_active`
    uses only users and items with at least one interaction."""

    n_users: int
    n_items: int
    n_interactions: int
    n_users_with_interactions: int
    n_items_with_interactions: int
    n_unique_pairs: int
    n_social_edges: int
    density: float | None
    sparsity: float | None
    density_active: float | None
    interactions_per_user: float | None
    interactions_per_item: float | None


@dataclass(frozen=True, slots=True)
class ActivityStats:
    """Interactions per user (activity) and per item (popularity); every row counts.

    Distributions and histograms cover users/items with at least one interaction. The long-tail
    shares rank the items with interactions by popularity: `top20_items_share` is the share of
    interactions on the most popular 20% of them, `items_share_for_80pct` the smallest share of
    them that together hold 80% of interactions. `gini_*_all` include the zeros of the whole
    user base / catalog. `popularity_curve_x/y`: cumulative share of interactions (y) held by the
    top x share of items with interactions (a Lorenz curve, most popular first).
    """

    user_activity: Distribution
    item_popularity: Distribution
    user_activity_histogram: Histogram | None
    item_popularity_histogram: Histogram | None
    gini_user_activity: float | None
    gini_user_activity_all: float | None
    gini_item_popularity: float | None
    gini_item_popularity_all: float | None
    top20_items_share: float | None
    items_share_for_80pct: float | None
    popularity_curve_x: tuple[float, ...]
    popularity_curve_y: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ColdCount:
    """Users or items with fewer than `threshold` interactions (0 interactions for threshold 1)."""

    threshold: int
    count: int
    share: float | None


@dataclass(frozen=True, slots=True)
class ColdStartStats:
    """Cold users and items; `items_never_interacted` are catalog items without any interaction."""

    users: tuple[ColdCount, ...]
    items: tuple[ColdCount, ...]
    users_without_interactions: int
    items_never_interacted: int


@dataclass(frozen=True, slots=True)
class Conversion:
    """From one event type to a later one in the funnel.

    `count_ratio` = n(target) / n(source) over all rows; `pair_rate` = share of the distinct
    (user, item) pairs with a `source` event that also have a `target` event (any order).
    """

    source: str
    target: str
    count_ratio: float | None
    pair_rate: float | None


@dataclass(frozen=True, slots=True)
class EventFunnel:
    """Rows, distinct users and distinct (user, item) pairs per event type (present types only)."""

    counts: Mapping[str, int]
    users: Mapping[str, int]
    pairs: Mapping[str, int]
    conversions: tuple[Conversion, ...]


@dataclass(frozen=True, slots=True)
class ValueStats:
    """Interaction values (ratings, listen counts, dwell times) where present.

    When the values are few distinct integers (ratings), `levels`/`level_counts` give the exact
    histogram; otherwise `histogram` bins them (log-spaced for heavy-tailed positives).
    """

    n_with_value: int
    share_with_value: float | None
    by_event: Mapping[str, int]
    distribution: Distribution
    discrete: bool
    levels: tuple[float, ...]
    level_counts: tuple[int, ...]
    histogram: Histogram | None
    n_negative: int


@dataclass(frozen=True, slots=True)
class Growth:
    """Per calendar period (Monday-aligned weeks, or months for spans over ~10 years), UTC.

    `starts` are the ISO dates of each period's first day. `new_users`/`new_items` count users
    and items whose first interaction falls in the period; `items_created` counts items by
    `created_at` (None when no item has one). Only plausible timestamps (0 < t <= now) count.
    """

    period: Literal["week", "month"]
    starts: tuple[str, ...]
    interactions: tuple[int, ...]
    new_users: tuple[int, ...]
    new_items: tuple[int, ...]
    items_created: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class TemporalStats:
    """When interactions happen (UTC). `by_weekday[0]` is Monday.

    `item_age_days`: days between the item's `created_at` and the interaction, over interactions
    where both are known (negative = before the item existed, see the data-quality list).
    """

    n_with_timestamp: int
    share_with_timestamp: float | None
    first: str | None
    last: str | None
    first_epoch: float | None
    last_epoch: float | None
    span_days: float | None
    by_hour: tuple[int, ...]
    by_weekday: tuple[int, ...]
    growth: Growth | None
    item_age_days: Distribution | None
    item_age_histogram: Histogram | None
    share_before_item_creation: float | None


@dataclass(frozen=True, slots=True)
class MetadataStats:
    """Completeness of item and user metadata.

    `item_fields[f]` = share of catalog items with a non-empty field f (title, text, tags,
    category, author, created_at, any). Length distributions cover items with that field.
    `top_tags`/`top_categories`: up to 10 (name, number of items) pairs, most frequent first.
    `user_fields[f]` = share of users with interests / created_at / private=True / each attribute.
    """

    n_items: int
    item_fields: Mapping[str, float | None]
    item_field_counts: Mapping[str, int]
    title_length: Distribution | None
    text_length: Distribution | None
    text_words: Distribution | None
    tags_per_item: Distribution | None
    n_distinct_tags: int
    n_distinct_categories: int
    n_distinct_authors: int
    authors_known_users: float | None
    top_tags: tuple[tuple[str, int], ...]
    top_categories: tuple[tuple[str, int], ...]
    n_users: int
    user_fields: Mapping[str, float | None]
    users_with_interests: int
    n_distinct_interests: int


@dataclass(frozen=True, slots=True)
class SocialStats:
    """The follow graph (directed follower -> followee; a friendship is two edges).

    Degree distributions cover all users (zeros included); histograms cover degrees >= 1.
    `reciprocity`: share of non-self edges whose reverse edge exists. Components are weakly
    connected components of the users that have at least one edge (`largest_component_share`
    is relative to those; `..._of_all_users` to the whole user base).
    """

    n_nodes: int
    n_edges: int
    n_users_in_graph: int
    in_degree: Distribution
    out_degree: Distribution
    in_degree_histogram: Histogram | None
    out_degree_histogram: Histogram | None
    max_in_degree: int
    max_out_degree: int
    reciprocity: float | None
    n_self_follows: int
    n_components: int
    largest_component_size: int
    largest_component_share: float | None
    largest_component_share_of_all_users: float | None
    users_without_followees: int
    users_without_followees_share: float | None
    users_without_followers: int
    isolated_users: int
    isolated_users_share: float | None


@dataclass(frozen=True, slots=True)
class InNetworkStats:
    """How much consumption the social graph explains.

    An interaction (u, i, t) is *in-network* when the item's author is followed by u
    (`share_author_followed`, exact over all interactions) or some followee of u interacted with
    i strictly before t (`share_followee_interacted`; `timing` says "at any time" when the
    dataset has no timestamps; rows with an unknown time also use "at any time").
    `share_in_network` is the union. `method` says whether the followee part ran on every
    interaction ("exact") or on a uniform sample of `n_evaluated` interactions drawn with
    `sample_seed` ("sample"); `share_in_network` is measured on the same rows.
    """

    n_interactions: int
    share_with_known_author: float | None
    share_author_followed: float | None
    share_followee_interacted: float | None
    share_in_network: float | None
    share_by_users_with_followees: float | None
    method: Literal["exact", "sample"]
    n_evaluated: int
    sample_seed: int | None
    timing: Literal["strictly before", "at any time"]
    note: str


@dataclass(frozen=True, slots=True)
class QualityIssue:
    """One data-quality finding: how bad, what, how many rows/entities, and one example."""

    severity: Severity
    problem: str
    count: int
    example: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetAnalysis:
    """Everything `analyze_dataset` measured about one dataset (see the module docstring).

    >>> import pandas as pd
    >>> from serendip.data.dataset import Dataset
    >>> from serendip.data.analysis import analyze_dataset
    >>> ds = Dataset.from_frames(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]}))
    >>> a = analyze_dataset(ds)
    >>> a.counts.n_interactions, round(a.counts.density, 2), a.social is None
    (3, 0.75, True)
    """

    name: str
    generated_at: str
    counts: Counts
    activity: ActivityStats
    cold_start: ColdStartStats
    events: EventFunnel
    values: ValueStats | None
    temporal: TemporalStats | None
    metadata: MetadataStats
    social: SocialStats | None
    in_network: InNetworkStats | None
    quality: tuple[QualityIssue, ...]
    #: Why a section is None, by section name ("values", "temporal", "social", "in_network").
    absent: Mapping[str, str] = field(default_factory=dict)
    #: Seconds each analysis step took (the report footer sums them; not part of the data's
    #: description).
    timings_s: Mapping[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested dict: only dict/list/str/int/float/bool/None, no NaN or infinity."""
        out = jsonable(self)
        assert isinstance(out, dict)
        return out
