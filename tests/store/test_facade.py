"""Whole-store behaviour on both backends: the training export, import, privacy operations,
durability against SIGKILL and concurrent writers."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.store import EventIn, ItemIn, Store, UserIn
from tests.conftest import make_toy_platform


def _interaction_set(ds: Dataset) -> set[tuple]:
    f = ds.interactions_frame()
    return {
        (r.user, r.item, float(r.timestamp), r.event, None if math.isnan(r.value) else r.value)
        for r in f.itertuples(index=False)
    }


def test_to_dataset_round_trips_a_platform(store: Store) -> None:
    toy = make_toy_platform(n_users=30, n_items=50)
    counts = store.import_dataset(toy)
    assert counts == {
        "users": toy.n_users,
        "items": toy.n_items,
        "follows": len(toy.social),
        "events": toy.n_interactions,
    }
    assert store.import_dataset(toy)["events"] == 0  # idempotent

    back = store.to_dataset()
    assert (back.n_users, back.n_items, back.n_interactions) == (
        toy.n_users,
        toy.n_items,
        toy.n_interactions,
    )
    assert _interaction_set(back) == _interaction_set(toy)
    cols = ["item", "title", "text", "tags", "category", "author", "created_at"]
    a = toy.items_frame()[cols].sort_values("item").reset_index(drop=True)
    b = back.items_frame()[cols].sort_values("item").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    edges = {(r.follower, r.followee) for r in toy.social_frame().itertuples()}
    assert {(r.follower, r.followee) for r in back.social_frame().itertuples()} == edges
    for u in ("u000", "u007"):
        assert (
            back.user_meta.interests[back.users.index(u)]
            == toy.user_meta.interests[toy.users.index(u)]
        )
    # the interaction timestamps stay sorted, as splitters expect of a log
    assert np.all(np.diff(back.interactions.timestamp) >= 0)


def test_to_dataset_reads_events_in_chunks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from serendip.store import facade

    toy = make_toy_platform(n_users=30, n_items=50)
    store.import_dataset(toy)
    whole = store.to_dataset()
    monkeypatch.setattr(facade, "_READ_CHUNK", 7)  # many chunks, categories differing by chunk
    chunked = store.to_dataset()
    assert _interaction_set(chunked) == _interaction_set(whole) == _interaction_set(toy)
    assert chunked.users.ids.tolist() == whole.users.ids.tolist()
    assert chunked.items.ids.tolist() == whole.items.ids.tolist()
    np.testing.assert_array_equal(chunked.interactions.user, whole.interactions.user)
    np.testing.assert_array_equal(chunked.interactions.item, whole.interactions.item)


def test_to_dataset_window_and_deleted_items(store: Store) -> None:
    store.users.upsert([UserIn("carol", ("jazz",), True)])
    store.catalog.upsert([ItemIn("p1", "one"), ItemIn("p2", "two"), ItemIn("p3", "three")])
    store.events.add_batch(
        [
            EventIn("a", "alice", "p1", "view", 10.0),
            EventIn("b", "alice", "p2", "like", 20.0, 1.0),
            EventIn("c", "bob", "p3", "view", 30.0),
            EventIn("d", "bob", "unlisted", "view", 40.0),
        ]
    )
    store.social.follow("dave", "alice", 5.0)
    store.catalog.delete(["p3"])

    ds = store.to_dataset()
    assert ds.n_interactions == 3  # the event on deleted p3 is gone
    assert "p3" not in set(ds.items.ids)
    assert set(ds.items.ids) == {"p1", "p2", "unlisted"}  # unlisted: named by an event only
    assert set(ds.users.ids) == {"alice", "bob", "carol", "dave"}
    assert bool(ds.user_meta.private[ds.users.index("carol")]) is True

    window = store.to_dataset(since=15.0, until=40.0)
    assert window.interactions_frame()["item"].tolist() == ["p2"]
    assert window.interactions_frame()["value"].tolist() == [1.0]


def test_export_and_erase_a_user(store: Store) -> None:
    store.users.upsert([UserIn("alice", ("cats",), False, 1.0)])
    store.events.add_batch(
        [EventIn("e1", "alice", "p1", "like", 1.0), EventIn("e2", "bob", "p1", "view", 2.0)]
    )
    store.social.follow("alice", "bob", 1.0)
    store.social.follow("carol", "alice", 1.0)

    data = store.export_user("alice")
    assert data["profile"]["interests"] == ["cats"]
    assert [e["event_id"] for e in data["events"]] == ["e1"]
    assert data["following"] == [{"followee": "bob", "created_at": 1.0}]
    assert data["followers"] == [{"follower": "carol", "created_at": 1.0}]

    assert store.erase_user("alice") == {
        "events": 1,
        "follows": 2,
        "unfollows": 0,
        "exposures": 0,
        "consent": 0,
        "profile": 1,
        "authored_items_reattributed": 0,
    }
    empty = store.export_user("alice")
    assert (empty["profile"], empty["events"], empty["following"], empty["followers"]) == (
        None,
        [],
        [],
        [],
    )
    assert store.events.count() == 1  # bob's event stays


_WRITER = """
import sys
from serendip.store import EventIn, Store
store = Store.open(sys.argv[1])
b = 0
while True:
    batch = [EventIn(f"k{b}-{i}", f"u{i % 50}", f"i{i % 300}", "view", 1.7e9 + i) for i in range(1000)]
    store.events.add_batch(batch)
    print(b, flush=True)  # acknowledged: add_batch returned
    b += 1
"""


def test_acknowledged_events_survive_sigkill(store_url: str) -> None:
    Store.open(store_url).close()  # migrate first, so the child only writes
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, store_url], stdout=subprocess.PIPE, text=True
    )
    acked = -1
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while acked < 2 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked = int(line)
        # Kill it at once, most likely in the middle of the next batch.
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert acked >= 2, "writer did not acknowledge batches"
    with Store.open(store_url) as store:
        for b in range(acked + 1):
            assert store.events.get(f"k{b}-0") is not None
            assert store.events.get(f"k{b}-999") is not None
        n = store.events.count()
        # every acknowledged batch is there, and a batch is all or nothing
        assert n % 1000 == 0 and n >= (acked + 1) * 1000


def test_concurrent_writers_all_land(store: Store) -> None:
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for b in range(4):
                batch = [EventIn(f"t{t}-{b}-{i}", f"u{i}", "p", "view", 1.0) for i in range(300)]
                store.events.add_batch(batch)
                store.catalog.upsert([ItemIn(f"p{t}-{b}")])
                store.social.follow(f"u{t}", f"v{b}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.events.count() == 4 * 4 * 300
    assert store.catalog.count() == 16
    assert store.social.count() == 16


def test_to_dataset_of_an_empty_store(store: Store) -> None:
    ds = store.to_dataset()
    assert (ds.n_users, ds.n_items, ds.n_interactions, len(ds.social)) == (0, 0, 0, 0)
