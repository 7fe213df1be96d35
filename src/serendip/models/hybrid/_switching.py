"""Switching hybrid: one member per user, chosen by how much the model knows about the user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from serendip.models.base import Evidence, FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.hybrid._members import (
    HybridBase,
    MemberSpec,
    context_matrix,
    members_of,
    normalise,
    parse_members,
)

__all__ = ["SwitchingHybrid", "SwitchingHybridConfig"]


class SwitchingHybridConfig(ModelConfig):
    """warm: the collaborative member {name: params}; cold: the member for cold users
    (content, social or popularity); min_interactions: users with fewer training interactions
    (distinct items; for an unknown user, context items) are cold.

    Item state (off by default): with min_item_interactions > 0, items with fewer training
    interactions are cold items; for warm users they are scored by the cold member, scaled by
    cold_item_weight, both members' scores min-max normalised per user first.
    """

    warm: dict[str, dict[str, Any]] = Field(default_factory=lambda: members_of("ease"))
    cold: dict[str, dict[str, Any]] = Field(default_factory=lambda: members_of("popularity"))
    min_interactions: int = Field(default=5, ge=0)
    min_item_interactions: int = Field(default=0, ge=0)
    cold_item_weight: float = Field(default=0.5, ge=0)

    @field_validator("warm", "cold")
    @classmethod
    def _one(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if len(v) != 1:
            raise ValueError(f"exactly one member {{name: params}} is needed, got {len(v)}")
        return v


class SwitchingHybrid(HybridBase[SwitchingHybridConfig]):
    """The rule, per user: fewer than `min_interactions` distinct training items (unknown users:
    context items) -> the `cold` member; otherwise the `warm` member. Both members are fitted
    on the whole training set; the chosen member's scores are used as they are.

    Item rule (when `min_item_interactions` > 0): for warm users, items with fewer training
    interactions than that take the cold member's score x `cold_item_weight` (after min-max
    normalising both members per user), so new items can surface for warm users.
    Explanations come from the member the user was routed to, named as the "source".
    """

    name = "switching-hybrid"
    description = "Cold users/items -> content/social/popular, warm -> collaborative."
    Config: ClassVar[type[ModelConfig]] = SwitchingHybridConfig
    search_space: ClassVar[SearchSpace] = {
        "min_interactions": IntRange(1, 20, log=True),
        "cold_item_weight": FloatRange(0.0, 1.0),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "warm": {"category-popularity": {}},
        "cold": {"popularity": {}},
        "min_interactions": 10,
    }

    def _specs(self) -> list[MemberSpec]:
        c = self.config
        warm = parse_members(c.warm, "warm")
        cold = parse_members(c.cold, "cold")
        if warm[0].key == cold[0].key:
            # two members under one key would collide: label the cold one
            cold = [MemberSpec(f"{cold[0].key}@cold", cold[0].model, cold[0].params)]
        return warm + cold

    @property
    def _keys(self) -> tuple[str, str]:
        specs = self._specs()
        return specs[0].key, specs[1].key

    def is_cold(self, user_idx: np.ndarray) -> np.ndarray:
        """bool per known user index: routed to the cold member."""
        counts = np.diff(self.train_.indptr)[np.asarray(user_idx, dtype=np.int64)]
        return counts < self.config.min_interactions

    # -------------------------------------------------------------- scoring
    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        warm_key, cold_key = self._keys
        cold = self.is_cold(user_idx)
        out = np.empty((len(user_idx), len(self.items_)), np.float32)
        if cold.any():
            out[cold] = self.members_[cold_key]._score_warm(user_idx[cold])
        if (~cold).any():
            rows = user_idx[~cold]
            scores = np.asarray(self.members_[warm_key]._score_warm(rows), np.float32)
            if self.config.min_item_interactions > 0:
                scores = self._mix_cold_items(
                    scores, self.members_[cold_key]._score_warm(rows), self.train_[rows]
                )
            out[~cold] = scores
        return out

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        warm_key, cold_key = self._keys
        if len(np.unique(context)) < self.config.min_interactions:
            return np.asarray(self.members_[cold_key]._score_cold(context), np.float32)
        scores = np.asarray(self.members_[warm_key]._score_cold(context), np.float32)
        if self.config.min_item_interactions > 0:
            exclude = context_matrix(context, len(self.items_))
            cold_scores = np.asarray(self.members_[cold_key]._score_cold(context))[None, :]
            scores = self._mix_cold_items(scores[None, :], cold_scores, exclude)[0]
        return scores

    def _cold_items(self) -> np.ndarray:
        counts = np.diff(self.train_.tocsc().indptr)
        return counts < self.config.min_item_interactions

    def _mix_cold_items(self, warm: np.ndarray, cold: np.ndarray, exclude: Any) -> np.ndarray:
        items = self._cold_items()
        if not items.any():
            return warm
        w = normalise(warm, exclude, "minmax")
        c = normalise(np.asarray(cold), exclude, "minmax")
        w[:, items] = self.config.cold_item_weight * c[:, items]
        return w.astype(np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        warm_key, cold_key = self._keys
        n = int(np.diff(self.train_.indptr)[user_idx])
        cold_user = bool(self.is_cold(np.array([user_idx]))[0])
        cold_item = self.config.min_item_interactions > 0 and bool(self._cold_items()[item_idx])
        key = cold_key if cold_user or cold_item else warm_key
        reason = (
            f"cold user: {n} interactions < {self.config.min_interactions}"
            if cold_user
            else "cold item"
            if cold_item
            else f"warm user: {n} interactions"
        )
        return self._member_explanation(key, user_idx, item_idx, 1.0, reason)
