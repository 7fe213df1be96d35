"""Consent "do not use my activity for others", at the next fit, per candidate source: a source
fitted on the store's training export with a user withholding their activity proposes to every
other user exactly what it proposes when that user's interactions never existed -- and, for the
sources that learn from other users' interactions, something different when the user's
activity is used (so the comparison can fail)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.sources import SOURCES, SourceBase, make_source
from serendip.store import Store
from tests.conftest import make_toy_platform

QUICK: dict[str, dict[str, Any]] = {
    "collaborative": {"model": "ials", "params": {"factors": 8, "iterations": 3, "seed": 0}},
    "collaborative-2": {"model": "item-knn", "params": {"k": 10}},
    "collaborative-oon": {"model": "item-knn", "params": {"k": 10}},
}
#: sources whose proposals to others depend on other users' interactions
LEARN_FROM_OTHERS = {
    "in-network",
    "collaborative",
    "collaborative-2",
    "collaborative-oon",
    "recent-item-knn",
    "trending",
    "explore",
}


def _withheld_user(ds: Dataset) -> str:
    """The user with the most followers among the most active: the one whose activity
    reaches the most other users' candidates."""
    followers = np.bincount(ds.social_frame()["followee"].map(ds.users.get), minlength=ds.n_users)
    activity = ds.user_counts()
    return str(ds.users.id(int(np.argmax(followers * activity))))


def _without_interactions(ds: Dataset, user: str) -> Dataset:
    """`ds` as if `user` had never interacted (profile and follows kept, marked private)."""
    inter = ds.interactions_frame()
    um = ds.user_meta
    users = pd.DataFrame(
        {
            "user": ds.users.ids.astype(str),
            "created_at": um.created_at,
            "interests": [tuple(x) for x in um.interests],
            "private": [
                bool(p) or u == user for u, p in zip(ds.users.ids, um.private, strict=True)
            ],
        }
    )
    return Dataset.from_frames(
        inter[inter["user"] != user], ds.items_frame(), users, ds.social_frame(), name=ds.name
    )


@cache
def _datasets(root: str) -> tuple[str, Dataset, Dataset, Dataset]:
    """(withheld user, fit input with consent honoured, reference without their
    interactions, fit input ignoring consent) -- each through a real store."""
    toy = make_toy_platform()
    who = _withheld_user(toy)
    store = Store.open(f"sqlite:///{Path(root) / 'consent.db'}")
    store.import_dataset(toy)
    store.consents.update(who, activity_for_others=False)
    honoured, ignored = store.to_dataset(), store.to_dataset(honour_consent=False)
    store.close()
    ref = Store.open(f"sqlite:///{Path(root) / 'reference.db'}")
    ref.import_dataset(_without_interactions(toy, who))
    reference = ref.to_dataset()
    ref.close()
    return who, honoured, reference, ignored


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Dataset, Dataset, Dataset]:
    return _datasets(str(tmp_path_factory.mktemp("consent")))


def _proposals(name: str, ds: Dataset, users: list[str], now: float) -> list[list[str]]:
    src = make_source(name, **QUICK.get(name, {}))
    assert isinstance(src, SourceBase)
    src.fit(ds)
    out = []
    for ctx in contexts_from_dataset(ds, users, now=now):
        p = src.propose(ctx, 30)
        ids = [str(x) for x in ds.items.lookup(p.items)]
        out.append([f"{i}:{s:.6g}" for i, s in zip(ids, p.scores.tolist(), strict=True)])
    return out


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_withheld_users_activity_changes_no_other_users_candidates(
    name: str, datasets: tuple[str, Dataset, Dataset, Dataset]
) -> None:
    who, honoured, reference, ignored = datasets
    assert who in honoured.users.ids.astype(str)
    users = [str(u) for u in honoured.users.ids if str(u) != who]
    now = float(np.nanmax(ignored.interactions.timestamp))
    got = _proposals(name, honoured, users, now)
    assert got == _proposals(name, reference, users, now)
    if name in LEARN_FROM_OTHERS:  # the comparison can fail: used, their activity shows
        assert got != _proposals(name, ignored, users, now), f"{name} never saw {who}'s activity"


def test_the_training_export_keeps_a_withheld_users_profile_and_follows(
    datasets: tuple[str, Dataset, Dataset, Dataset],
) -> None:
    who, honoured, _, ignored = datasets
    u = honoured.users.get(who)
    assert u >= 0 and bool(honoured.user_meta.private[u])
    assert not np.any(honoured.interactions.user == u)
    assert np.any(ignored.interactions.user == ignored.users.get(who))
    assert len(honoured.social_frame()) == len(ignored.social_frame())
