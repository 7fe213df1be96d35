from __future__ import annotations

import numpy as np
import pytest

from serendip.data.dataset import EVENT_CODES
from serendip.errors import DataError
from serendip.pipeline.context import contexts_from_dataset
from tests.pipeline._tiny import DAY, NOW, tiny_platform


def test_history_followees_interests_and_now() -> None:
    ds = tiny_platform()
    (a, b) = contexts_from_dataset(ds, ["a", "b"])
    assert a.user == "a" and a.user_idx == ds.users.index("a")
    assert list(ds.items.lookup(a.history)) == ["h2", "h1"]  # most recent first
    assert np.all(np.diff(a.history_time) <= 0)
    assert a.history_event.tolist() == [EVENT_CODES["like"]] * 2
    assert sorted(ds.users.lookup(a.followees)) == ["b", "c"]
    assert a.interests == ("garden",)
    assert a.now == pytest.approx(NOW)  # newest timestamp of the data
    assert list(ds.users.lookup(b.followees)) == ["d"]
    assert not a.is_cold


def test_extra_history_and_unknown_user() -> None:
    ds = tiny_platform()
    live = {
        "a": [("p1", NOW + DAY, "share"), ("not-an-item", NOW, "like"), ("h1", NOW + 2, "view")],
        "new": [("d1", NOW + 5, "click")],
    }
    a, new = contexts_from_dataset(ds, ["a", "new"], now=NOW + 2 * DAY, extra_history=live)
    assert list(ds.items.lookup(a.history)) == ["p1", "h1", "h2"]  # deduped, unknown skipped
    # h1: latest time, strongest event (the earlier like beats the later view)
    assert a.history_event[1] == EVENT_CODES["like"]
    assert a.history_time[1] == NOW + 2
    assert a.now == NOW + 2 * DAY
    assert new.user_idx == -1 and new.is_cold
    assert list(ds.items.lookup(new.history)) == ["d1"]
    assert len(new.followees) == 0 and new.interests == ()


def test_bad_live_event_names_the_problem() -> None:
    with pytest.raises(DataError, match="unknown event type 'poke'"):
        contexts_from_dataset(tiny_platform(), ["a"], extra_history={"a": [("h1", NOW, "poke")]})


def test_many_users_match_the_log(toy_platform) -> None:  # type: ignore[no-untyped-def]
    ds = toy_platform
    users = list(ds.users.ids)
    ctxs = contexts_from_dataset(ds, users)
    seen = ds.seen()
    for u, c in zip(range(ds.n_users), ctxs, strict=True):
        assert sorted(c.history.tolist()) == sorted(seen[u].indices.tolist())
