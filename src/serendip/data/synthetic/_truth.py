"""Ground truth of a synthetic platform: the preferences the generator drew from.

`truth/` holds what no recommender may see but every simulation needs:

- `users.parquet`: user, community, activity (relative rate of exposures), fame (drives
  followers), is_author, and one `theta:<topic>` column per topic (the user's topic mixture,
  rows sum to 1);
- `items.parquet`: item, topic, quality (latent appeal, log-normal with mean 1), author;
- `response.json`: the response model (funnel rates and slopes) and the topic list.

`response_probability(truth, users, items)` is the probability that a user who is shown an item
engages with it, under the very model that generated the interactions, so later work can
simulate a user's response to a recommendation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from serendip.data.vocabulary import Vocabulary
from serendip.errors import DataError

__all__ = ["PlatformTruth", "ResponseModel", "load_truth", "response_probability"]

ResponseEvent = Literal["view", "click", "like", "comment", "share"]

#: Affinity below this counts as this (a topic the user never engages with still gets clicks).
_AFFINITY_FLOOR = 0.05


class ResponseModel(BaseModel):
    """P(event | exposure) = sigmoid(logit(rate) + slope * (affinity_effect * log(affinity + floor)
    + quality_effect * log(quality))), where affinity = n_topics * theta[user, topic(item)]
    (1 = an average topic for this user). Click and like have slope 1 given a view; comment and
    share are conditional on a like (slope 0.5), so the funnel view > like > share holds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    click_rate: float
    like_rate: float
    comment_rate: float
    share_rate: float
    affinity_effect: float
    quality_effect: float

    def probabilities(self, affinity: np.ndarray, quality: np.ndarray) -> dict[str, np.ndarray]:
        """Per exposure: P(click|view), P(like|view), P(comment|like), P(share|like) (float64)."""
        z = self.affinity_effect * np.log(np.asarray(affinity, dtype=np.float64) + _AFFINITY_FLOOR)
        z = z + self.quality_effect * np.log(np.asarray(quality, dtype=np.float64))
        return {
            "click": _sigmoid(_logit(self.click_rate) + 0.5 * z),
            "like": _sigmoid(_logit(self.like_rate) + z),
            "comment": _sigmoid(_logit(self.comment_rate) + 0.5 * z),
            "share": _sigmoid(_logit(self.share_rate) + 0.5 * z),
        }


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True, slots=True, eq=False)
class PlatformTruth:
    """Latent preferences of one generated platform, aligned with its ID vocabularies.

    user_topics: float64 (n_users, n_topics), rows sum to 1; item_topic: int64 (n_items,) index
    into `topics`; item_quality: float64 (n_items,), mean about 1; community: int64 (n_users,).
    """

    users: Vocabulary
    items: Vocabulary
    topics: tuple[str, ...]
    user_topics: np.ndarray
    item_topic: np.ndarray
    item_quality: np.ndarray
    community: np.ndarray
    response: ResponseModel

    def affinity(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """n_topics * theta[user, topic(item)] per pair of dense indices (1 = average topic)."""
        k = len(self.topics)
        return k * self.user_topics[np.asarray(user_idx), self.item_topic[np.asarray(item_idx)]]


def response_probability(
    truth: PlatformTruth,
    user_ids: Sequence[str] | np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
    event: ResponseEvent = "like",
) -> np.ndarray:
    """P(`event` | the user is shown the item), per (user, item) pair, float64 of the pairs' length.

    `user_ids` and `item_ids` are external IDs of equal length (pairs, not a grid). "like" is the
    positive engagement to simulate; "comment" and "share" are marginal (like and then the
    event); "view" is 1. Raises `DataError` naming the first unknown ID.

    >>> truth = load_truth("platform/truth")  # doctest: +SKIP
    >>> response_probability(truth, ["u000001"], ["i0000042"])  # doctest: +SKIP
    array([0.083])
    """
    users = np.asarray(user_ids, dtype=object)
    items = np.asarray(item_ids, dtype=object)
    if users.shape != items.shape or users.ndim != 1:
        raise DataError(
            f"user_ids and item_ids must be 1-D and of equal length, got {users.shape} and {items.shape}"
        )
    uidx = truth.users.indices(users)
    iidx = truth.items.indices(items)
    if (uidx < 0).any():
        raise DataError(
            f"unknown user '{users[np.argmax(uidx < 0)]}' (not in the platform's truth)"
        )
    if (iidx < 0).any():
        raise DataError(
            f"unknown item '{items[np.argmax(iidx < 0)]}' (not in the platform's truth)"
        )
    return event_probability(truth, uidx, iidx, event)


def event_probability(
    truth: PlatformTruth, uidx: np.ndarray, iidx: np.ndarray, event: ResponseEvent
) -> np.ndarray:
    """`response_probability` on dense indices."""
    if event == "view":
        return np.ones(len(uidx))
    p = truth.response.probabilities(truth.affinity(uidx, iidx), truth.item_quality[iidx])
    if event in ("click", "like"):
        return p[event]
    if event in ("comment", "share"):
        return p["like"] * p[event]
    raise DataError(f"unknown response event '{event}'; valid: view, click, like, comment, share")


def load_truth(path: str | Path) -> PlatformTruth:
    """Read `truth/` of a generated platform (the directory itself or the platform directory)."""
    root = Path(path)
    if (root / "truth").is_dir():
        root = root / "truth"
    for name in ("users.parquet", "items.parquet", "response.json"):
        if not (root / name).is_file():
            raise DataError(f"{root / name}: missing (not the truth/ of a generated platform?)")
    meta = json.loads((root / "response.json").read_text())
    topics = tuple(t["slug"] for t in meta["topics"])
    users = pd.read_parquet(root / "users.parquet")
    items = pd.read_parquet(root / "items.parquet")
    cols = [f"theta:{t}" for t in topics]
    missing = [c for c in cols if c not in users.columns]
    if missing:
        raise DataError(f"{root / 'users.parquet'}: missing topic columns {missing}")
    topic_index = {t: k for k, t in enumerate(topics)}
    item_topic = items["topic"].map(topic_index)
    if item_topic.isna().any():
        bad = items["topic"][item_topic.isna()].iloc[0]
        raise DataError(f"{root / 'items.parquet'}: field 'topic': unknown topic '{bad}'")
    return PlatformTruth(
        users=Vocabulary.from_unique(users["user"].to_numpy()),
        items=Vocabulary.from_unique(items["item"].to_numpy()),
        topics=topics,
        user_topics=users[cols].to_numpy(dtype=np.float64),
        item_topic=item_topic.to_numpy(dtype=np.int64),
        item_quality=items["quality"].to_numpy(dtype=np.float64),
        community=users["community"].to_numpy(dtype=np.int64),
        response=ResponseModel.model_validate(meta["response"]),
    )
