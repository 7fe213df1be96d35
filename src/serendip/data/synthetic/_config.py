"""The knobs of the synthetic platform, and the three presets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serendip.data.synthetic._topics import TOPICS
from serendip.errors import ConfigError, config_error_from

__all__ = ["PRESETS", "PlatformConfig", "resolve_config"]


class PlatformConfig(BaseModel):
    """Everything the generator draws from, besides the seed. Frozen; unknown fields fail.

    Sizes are targets: users and items are exact, interactions (rows of every event type) land
    within a few percent. Times are simulated days from `start_date` (UTC midnight).
    Rates are probabilities per exposure of an average item (quality 1) in a topic of average
    interest to the user (affinity 1); `affinity_effect` and `quality_effect` are the log-odds
    slopes that make better-matched and better items more engaging.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- sizes
    n_users: int = Field(ge=20, description="users (exact)")
    n_items: int = Field(ge=20, description="items (exact)")
    n_interactions: int = Field(ge=100, description="target interaction rows, all event types")
    n_topics: int = Field(default=len(TOPICS), ge=2, le=len(TOPICS), description="topics used")
    days: int = Field(default=120, ge=14, le=3650, description="simulated window in days")
    start_date: date = Field(default=date(2024, 1, 1), description="first day of the window (UTC)")
    warmup_days: int = Field(default=3, ge=0, description="days of posting before anyone interacts")
    new_user_share: float = Field(
        default=0.15, ge=0, le=1, description="users who join during the window"
    )

    # --- social graph
    community_size: int = Field(default=150, ge=5, description="mean users per community")
    mean_follows: float = Field(
        default=20.0, gt=0, description="mean out-degree (followees per user)"
    )
    follows_sigma: float = Field(default=1.0, ge=0, description="log-normal spread of out-degrees")
    no_follow_share: float = Field(default=0.05, ge=0, le=1, description="users who follow nobody")
    follow_in_community: float = Field(
        default=0.8, ge=0, le=1, description="share of follows inside the community"
    )
    fame_sigma: float = Field(
        default=1.3, ge=0, description="log-normal spread of fame (drives in-degree)"
    )
    author_fame_boost: float = Field(default=3.0, ge=1, description="fame multiplier of authors")
    reciprocity_in_community: float = Field(default=0.35, ge=0, le=1)
    reciprocity_across: float = Field(default=0.05, ge=0, le=1)

    # --- authors and items
    author_share: float = Field(default=0.15, gt=0, le=1, description="users who post")
    productivity_sigma: float = Field(
        default=1.2, ge=0, description="log-normal spread of posts per author"
    )
    author_focus: float = Field(
        default=3.0, ge=1, description="power that sharpens an author's topics"
    )
    quality_sigma: float = Field(default=1.0, ge=0, description="log-normal spread of item quality")
    author_skill_sigma: float = Field(
        default=0.3, ge=0, description="log-normal spread of author skill"
    )

    # --- interests
    interest_concentration: float = Field(
        default=1.5, gt=0, description="Dirichlet concentration of user mixtures"
    )
    community_interest_weight: float = Field(
        default=0.75, ge=0, le=1, description="pull of the community's topics"
    )
    community_topic_concentration: float = Field(
        default=0.3, gt=0, description="Dirichlet of community profiles"
    )
    explore_share: float = Field(
        default=0.05, ge=0, le=1, description="discovery draws ignoring interests"
    )
    declared_share: float = Field(
        default=0.7, ge=0, le=1, description="users who declare interests"
    )
    declared_keep: float = Field(
        default=0.75, ge=0, le=1, description="chance each top-3 topic is declared"
    )
    declared_noise: float = Field(
        default=0.2, ge=0, le=1, description="chance of one declared non-interest"
    )
    private_share: float = Field(default=0.05, ge=0, le=1)

    # --- activity and exposure
    activity_sigma: float = Field(
        default=1.4, ge=0, description="log-normal spread of user activity"
    )
    weekend_boost: float = Field(default=1.15, gt=0)
    in_network_share: float = Field(
        default=0.6, ge=0, le=0.95, description="interactions on followees' content"
    )
    network_author_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="of in-network exposures, share from followee-authored posts",
    )
    discover_freshness_days: float = Field(
        default=1.0, gt=0, description="mean item age when discovered"
    )
    feed_freshness_days: float = Field(
        default=0.5, gt=0, description="mean post age when seen in the feed"
    )
    feed_horizon_days: float = Field(
        default=7.0, gt=0, description="oldest post the feed shows (days)"
    )
    social_delay_days: float = Field(
        default=1.0, gt=0, description="mean delay after a followee's like/share"
    )
    network_memory_days: int = Field(
        default=14, ge=1, description="how long a like/share stays in followers' feeds (days)"
    )
    popularity_boost: float = Field(
        default=1.0, ge=0, description="rich-get-richer exponent in discovery"
    )

    # --- response (funnel)
    click_rate: float = Field(default=0.25, gt=0, lt=1, description="P(click | view)")
    like_rate: float = Field(default=0.04, gt=0, lt=1, description="P(like | view)")
    comment_rate: float = Field(default=0.12, gt=0, lt=1, description="P(comment | like)")
    share_rate: float = Field(default=0.1, gt=0, lt=1, description="P(share | like)")
    affinity_effect: float = Field(
        default=0.9, ge=0, description="log-odds per log of topic affinity"
    )
    quality_effect: float = Field(default=0.8, ge=0, description="log-odds per log of item quality")

    # --- output
    row_group_rows: int = Field(
        default=1_000_000, ge=1_000, description="interaction rows per Parquet row group"
    )
    item_chunk: int = Field(default=100_000, ge=1_000, description="items written per chunk")

    @model_validator(mode="after")
    def _consistent(self) -> PlatformConfig:
        if self.warmup_days >= self.days - 1:
            raise ValueError(
                f"warmup_days ({self.warmup_days}) must be shorter than days ({self.days}) - 1"
            )
        if self.n_items < self.n_topics:
            raise ValueError(
                f"n_items ({self.n_items}) must be at least n_topics ({self.n_topics})"
            )
        if self.n_users * self.n_items > 1 << 42:
            raise ValueError("n_users * n_items must stay below 2**42 (4.4e12)")
        if round(self.n_users * self.author_share) < 1:
            raise ValueError("author_share leaves no authors; raise it or n_users")
        return self

    @property
    def n_communities(self) -> int:
        return max(1, round(self.n_users / self.community_size))

    @property
    def n_authors(self) -> int:
        return max(1, round(self.n_users * self.author_share))


#: The presets: `tiny` for tests, `small` for the demo, `platform` at the mission's scale.
PRESETS: dict[str, PlatformConfig] = {
    "tiny": PlatformConfig(
        n_users=300,
        n_items=1_000,
        n_interactions=15_000,
        n_topics=16,
        days=90,
        community_size=40,
        mean_follows=20.0,
        activity_sigma=1.3,
        author_share=0.2,
        network_memory_days=90,
        feed_horizon_days=21.0,
        row_group_rows=100_000,
    ),
    "small": PlatformConfig(
        n_users=5_000,
        n_items=20_000,
        n_interactions=400_000,
        n_topics=24,
        days=120,
        community_size=150,
        mean_follows=20.0,
    ),
    "platform": PlatformConfig(
        n_users=100_000,
        n_items=1_000_000,
        n_interactions=20_000_000,
        days=180,
        community_size=400,
        mean_follows=25.0,
        author_share=0.12,
    ),
}


def resolve_config(
    preset: str | PlatformConfig, overrides: Mapping[str, Any] | None = None
) -> PlatformConfig:
    """The preset (by name, or a config) with `overrides` applied and validated.

    Raises `ConfigError` naming the unknown preset, or each bad field with what was wrong and,
    for an unknown field, the valid names.
    """
    if isinstance(preset, PlatformConfig):
        base = preset
    else:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}'; valid: {', '.join(PRESETS)}")
        base = PRESETS[preset]
    if not overrides:
        return base
    try:
        return PlatformConfig.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        unknown = any(e["type"] == "extra_forbidden" for e in exc.errors())
        raise config_error_from(
            exc, "invalid platform config", valid=PlatformConfig.model_fields if unknown else None
        ) from None
