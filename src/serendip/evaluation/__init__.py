"""Evaluation: splitters (`splits`), metrics (`metrics`) and `evaluate_recommendations`.

All plain functions: a splitter maps a `Dataset` to a `Split`; metrics map index arrays to
per-user scores; `evaluate_recommendations` aggregates them over all test users and slices.
"""

from serendip.evaluation.evaluate import (
    METRIC_DESCRIPTIONS,
    ActivitySlices,
    EvaluationResult,
    TopKLists,
    evaluate_recommendations,
    recs_from_frame,
)
from serendip.evaluation.splits import (
    SPLIT_METHODS,
    Split,
    cold_item_split,
    cold_user_split,
    leave_last_split,
    random_split,
    split_dataset,
    temporal_split,
    validation_split,
    with_validation,
)

__all__ = [
    "METRIC_DESCRIPTIONS",
    "SPLIT_METHODS",
    "ActivitySlices",
    "EvaluationResult",
    "Split",
    "TopKLists",
    "cold_item_split",
    "cold_user_split",
    "evaluate_recommendations",
    "leave_last_split",
    "random_split",
    "recs_from_frame",
    "split_dataset",
    "temporal_split",
    "validation_split",
    "with_validation",
]
