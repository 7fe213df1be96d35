"""Neighbourhood models: item-based kNN, user-based kNN and the RP3beta random walk.

All keep sparse top-k similarity matrices built in chunks (never a dense n x n matrix), score
from the user's (optionally weighted) history, fold new events in without a refit, and explain
recommendations by the history items or neighbour users that produced them.
"""

from serendip.models.neighborhood._knn import ItemKNN, ItemKNNConfig, UserKNN, UserKNNConfig
from serendip.models.neighborhood._rp3 import RP3beta, RP3betaConfig

__all__ = ["ItemKNN", "ItemKNNConfig", "RP3beta", "RP3betaConfig", "UserKNN", "UserKNNConfig"]
