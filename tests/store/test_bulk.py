"""Bulk imports from columns (`EventRepository.add_columns`, `SocialRepository.follow_columns`):
the fast path a dataset import takes, with the same rules as the per-row API on both backends --
checked before anything is stored, idempotent, durable in chunks."""

from __future__ import annotations

import numpy as np
import pytest

from serendip.errors import DataError
from serendip.store import Store


def _cols(n: int, prefix: str = "e") -> tuple[list[str], list[str], list[str], list[str]]:
    ids = [f"{prefix}{j}" for j in range(n)]
    users = [f"u{j % 7}" for j in range(n)]
    items = [f"i{j % 11}" for j in range(n)]
    events = ["view", "like", "click"] * (n // 3) + ["view"] * (n % 3)
    return ids, users, items, events


def test_events_from_columns_are_stored_once_in_chunks(store: Store) -> None:
    ids, users, items, events = _cols(25)
    ts = np.arange(25, dtype=np.float64) + 1_700_000_000.0
    ts[3] = np.nan  # no timestamp: the import time
    value = np.full(25, np.nan)
    value[0] = 4.5
    assert store.events.add_columns(ids, users, items, events, ts, value, chunk=4) == 25
    assert store.events.count() == 25
    # again, and overlapping with new ones: only the new rows count
    more = _cols(30)
    assert store.events.add_columns(*more, np.full(30, 1.7e9), chunk=7) == 5
    assert store.events.count() == 30
    first = store.events.get("e0")
    assert first is not None and first.value == 4.5 and first.timestamp == 1_700_000_000.0
    untimed = store.events.get("e3")
    assert untimed is not None and untimed.timestamp > 1.7e9  # the import time
    assert store.events.newest_timestamp() == pytest.approx(untimed.timestamp)


@pytest.mark.parametrize(
    ("column", "bad", "field"),
    [
        ("user", "", "user"),
        ("item", "x" * 300, "item"),
        ("event", "purchase", "event"),
        ("event_id", "a\x00b", "event_id"),
    ],
)
def test_one_bad_event_stores_nothing_and_names_field_and_row(
    store: Store, column: str, bad: str, field: str
) -> None:
    ids, users, items, events = _cols(10)
    cols = {"event_id": ids, "user": users, "item": items, "event": events}
    cols[column] = list(cols[column])
    cols[column][6] = bad
    with pytest.raises(DataError) as err:
        store.events.add_columns(
            cols["event_id"], cols["user"], cols["item"], cols["event"], np.zeros(10) + 1.7e9
        )
    assert err.value.field == field and err.value.row == 7
    assert store.events.count() == 0


def test_infinite_timestamps_and_ragged_columns_are_refused(store: Store) -> None:
    ids, users, items, events = _cols(4)
    ts = np.array([1.0, np.inf, 2.0, 3.0])
    with pytest.raises(DataError, match="finite"):
        store.events.add_columns(ids, users, items, events, ts)
    with pytest.raises(DataError, match="length"):
        store.events.add_columns(ids, users[:3], items, events, np.ones(4))
    assert store.events.add_columns([], [], [], [], np.zeros(0)) == 0
    assert store.events.newest_timestamp() is None


def test_follows_from_columns(store: Store) -> None:
    a = ["u1", "u1", "u2", "u3"]
    b = ["u2", "u3", "u3", "u1"]
    at = np.array([1.0, 2.0, np.nan, 4.0])
    assert store.social.follow_columns(a, b, at, chunk=3) == 4
    assert store.social.follow_columns([*a, "u4"], [*b, "u1"], np.ones(5)) == 1
    assert sorted(store.social.followees("u1")) == ["u2", "u3"]
    with pytest.raises(DataError) as err:
        store.social.follow_columns(["u5", "u6"], ["u7", "u6"], np.ones(2))
    assert err.value.field == "followee" and err.value.row == 2
    assert store.social.followees("u5") == []
