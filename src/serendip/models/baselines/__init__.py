"""Baselines: global popularity, time-decayed trending, popularity per category, random."""

from serendip.models.baselines._popularity import (
    CategoryPopularity,
    Popularity,
    RandomRecommender,
    Trending,
)

__all__ = ["CategoryPopularity", "Popularity", "RandomRecommender", "Trending"]
