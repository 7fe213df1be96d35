"""Data layer: the `Dataset` model, vocabularies, loaders, the synthetic platform, analysis."""

from serendip.data.dataset import (
    EVENT_CODES,
    EVENT_TYPES,
    Dataset,
    Interactions,
    ItemTable,
    MatrixConfig,
    SocialGraph,
    UserTable,
)
from serendip.data.vocabulary import Vocabulary

__all__ = [
    "EVENT_CODES",
    "EVENT_TYPES",
    "Dataset",
    "Interactions",
    "ItemTable",
    "MatrixConfig",
    "SocialGraph",
    "UserTable",
    "Vocabulary",
]
