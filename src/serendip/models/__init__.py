"""The model zoo: one subpackage per family, all behind the `Recommender` contract."""

from serendip.models.base import (
    Evidence,
    Explanation,
    ItemFilter,
    ModelConfig,
    RecLists,
    Recommender,
)
from serendip.models.registry import create_model, get_model_class, list_models

__all__ = [
    "Evidence",
    "Explanation",
    "ItemFilter",
    "ModelConfig",
    "RecLists",
    "Recommender",
    "create_model",
    "get_model_class",
    "list_models",
]
