"""How a user's interactions weigh in a profile: event type, listen counts, recency.

Shared by the content and social families: a `WeightingConfig` mixin of hyperparameters, the
`MatrixConfig` it stands for, and the matrix of newly folded-in events (for `update`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator

from serendip.data.dataset import DEFAULT_EVENT_WEIGHTS, EVENT_TYPES, MatrixConfig
from serendip.errors import DataError
from serendip.models.base import ModelConfig, Recommender

__all__ = [
    "WeightingConfig",
    "empty_csr",
    "events_matrix",
    "l2_rows",
    "weighting_matrix_config",
]


class WeightingConfig(ModelConfig):
    """Interaction weighting: weight = event_weights[event] * transform(value) * decay.

    value_transform: "log1p" turns listen counts (or ratings) into log(1 + value), the
    confidence Last.fm-style data needs; a missing value counts 1. half_life_days: exponential
    recency decay relative to the newest training interaction (None = no decay).
    """

    value_transform: Literal["none", "log1p"] = "log1p"
    half_life_days: float | None = Field(default=None, gt=0)
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))

    @field_validator("event_weights")
    @classmethod
    def _known_events(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}; valid: {list(EVENT_TYPES)}")
        if any(w < 0 or not math.isfinite(w) for w in v.values()):
            raise ValueError("event weights must be finite and non-negative")
        return {**DEFAULT_EVENT_WEIGHTS, **v}


def weighting_matrix_config(config: WeightingConfig) -> MatrixConfig:
    """The `MatrixConfig` (weighted, summed over repeats) that `config` describes."""
    return MatrixConfig(
        event_weights=dict(config.event_weights),
        value_transform=config.value_transform,
        half_life_days=config.half_life_days,
    )


def events_matrix(
    model: Recommender, events: pd.DataFrame, config: WeightingConfig
) -> sp.csr_matrix:
    """Weights (float32 CSR, n_users x n_items of the model's vocabularies) of new events.

    events: external IDs in columns user, item, optional event, value. Events of users or items
    the model does not know are skipped (they cannot enter a fixed vocabulary); recency decay is
    not applied because new events are the newest. Also marks the known pairs as seen in
    `model.train_`, so they are not recommended again.
    """
    for col in ("user", "item"):
        if col not in events:
            raise DataError(f"events need a '{col}' column", field=col)
    u = model.users_.indices(events["user"].astype(str).to_numpy())
    i = model.items_.indices(events["item"].astype(str).to_numpy())
    n = len(events)
    if "event" in events:
        names = events["event"].fillna("view").astype(str).str.lower()
        bad = ~names.isin(EVENT_TYPES)
        if bad.any():
            raise DataError(
                f"unknown event type '{names[bad].iloc[0]}'; valid: {', '.join(EVENT_TYPES)}",
                field="event",
            )
        w = names.map(config.event_weights).to_numpy(dtype=np.float64)
    else:
        w = np.full(n, config.event_weights["view"])
    if config.value_transform == "log1p":
        v = (
            pd.to_numeric(events["value"], errors="coerce").to_numpy(dtype=np.float64)
            if "value" in events
            else np.full(n, np.nan)
        )
        v = np.nan_to_num(v, nan=1.0)
        if (v < 0).any():
            raise DataError("interaction values must be non-negative to be used as weights")
        w = w * np.log1p(v)
    ok = (u >= 0) & (i >= 0)
    shape = model.train_.shape
    add = sp.csr_matrix((w[ok].astype(np.float32), (u[ok], i[ok])), shape=shape, dtype=np.float32)
    add.sum_duplicates()
    if ok.any():
        pairs = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=shape, dtype=np.float32
        )
        pairs.sum_duplicates()
        pairs.data[:] = 1.0
        new = pairs - pairs.multiply(model.train_)  # pairs not seen before
        model.popularity_ = model.popularity_ + np.asarray(new.sum(axis=0)).ravel().astype(
            np.float32
        )
        seen = (model.train_ + pairs).tocsr()
        seen.data[:] = 1.0
        model.train_ = seen
    return add


def l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero); float32 CSR, any column count."""
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)


def empty_csr(n_rows: int, n_cols: int) -> sp.csr_matrix:
    """An all-zero float32 CSR of the given shape."""
    none = np.zeros(0, np.int64)
    return sp.csr_matrix((np.zeros(0, np.float32), (none, none)), shape=(n_rows, n_cols))
