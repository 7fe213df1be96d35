"""What a model may know about one user at request time (`UserContext`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["UserContext"]


@dataclass(frozen=True, slots=True, eq=False)
class UserContext:
    """Everything a served model may use about one user at request time.

    user: external ID; user_idx: index in the fitted user vocabulary, -1 for a user the fitted
    artifacts never saw (cold start). history: item indices the user interacted with, most recent
    first (training history plus live events); history_time: their epoch seconds (NaN unknown),
    aligned; history_event: event codes (`EVENT_TYPES`), aligned. followees: user indices the user
    follows (fitted vocabulary). interests: declared interests (categories or tags). now: the
    request time (epoch seconds) -- "trending" and "fresh" are relative to it, and nothing
    created after it may be recommended. exclude: item indices never to return (blocked, seen in
    the request's context). live: external IDs of the items of the user's live events since the
    fit, oldest first (for models that take a history as context; the pipeline reads `history`).
    """

    user: str
    user_idx: int
    history: np.ndarray
    history_time: np.ndarray
    history_event: np.ndarray
    followees: np.ndarray
    interests: tuple[str, ...] = ()
    now: float = float("nan")
    exclude: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    live: tuple[str, ...] = ()

    @property
    def is_cold(self) -> bool:
        return self.user_idx < 0 or len(self.history) == 0
