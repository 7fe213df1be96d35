"""Neighbourhood models: item-based kNN, user-based kNN and the RP3beta random walk.

All keep sparse top-k similarity matrices built in chunks (never a dense n x n matrix), score
from the user's (optionally weighted) history, fold new events in without a refit, and explain
recommendations by the history items or neighbour users that produced them.

The shared machinery (profiles, chunked top-k similarities, fold-in, the item-to-item base) is
public too: the linear family and the pipeline's item-kNN source build on it.
"""

from serendip.models.neighborhood._common import (
    Confidence,
    FeatureWeighting,
    ProfileConfig,
    SimilaritySpec,
    all_pairs_knn,
    check_memory,
    neighbour_explanation,
    profile_config,
    topk_per_row,
)
from serendip.models.neighborhood._item_based import ItemToItem
from serendip.models.neighborhood._knn import ItemKNN, ItemKNNConfig, UserKNN, UserKNNConfig
from serendip.models.neighborhood._rp3 import RP3beta, RP3betaConfig

__all__ = [
    "Confidence",
    "FeatureWeighting",
    "ItemKNN",
    "ItemKNNConfig",
    "ItemToItem",
    "ProfileConfig",
    "RP3beta",
    "RP3betaConfig",
    "SimilaritySpec",
    "UserKNN",
    "UserKNNConfig",
    "all_pairs_knn",
    "check_memory",
    "neighbour_explanation",
    "profile_config",
    "topk_per_row",
]
