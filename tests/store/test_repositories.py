"""Contract tests of the repositories, run on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import math

import pytest

from serendip.errors import DataError, SerendipError
from serendip.store import (
    MAX_BATCH,
    EventIn,
    Follow,
    ItemIn,
    NotFoundError,
    Store,
    UserIn,
)


class Clock:
    """A settable clock, so tests can say exactly when things happened."""

    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clocked(store_url: str):
    clock = Clock()
    s = Store.open(store_url, clock=clock)
    yield s, clock
    s.close()


# --------------------------------------------------------------------- events
def test_same_event_id_twice_is_stored_once(store: Store) -> None:
    e = EventIn("e-1", "alice", "post-1", "like", 1_700_000_000.0, 1.0)
    assert store.events.add_batch([e]).accepted == 1
    again = store.events.add_batch([e, EventIn("e-2", "alice", "post-2", "view", 1.7e9)])
    assert (again.accepted, again.duplicates) == (1, 1)
    assert again.accepted_rows == (1,)  # which of the batch was stored: e-2
    assert store.events.count() == 2
    got = store.events.get("e-1")
    assert got is not None
    assert (got.user, got.item, got.event, got.timestamp, got.value) == (
        "alice",
        "post-1",
        "like",
        1_700_000_000.0,
        1.0,
    )


def test_duplicates_inside_one_batch_count_once(store: Store) -> None:
    e = EventIn("dup", "u", "i", "view", 1.0)
    assert store.events.add_batch([e, e, e]) == type(store.events.add_batch([]))(1, 2, (0,))
    assert store.events.count() == 1
    mixed = [EventIn("new", "u", "j", "view", 2.0), e, EventIn("new", "u", "j", "view", 2.0)]
    assert store.events.add_batch(mixed).accepted_rows == (0,)


def test_batch_of_ten_thousand_in_one_call(store: Store) -> None:
    batch = [
        EventIn(f"b-{i}", f"u{i % 97}", f"i{i % 1013}", "view", 1.7e9 + i) for i in range(MAX_BATCH)
    ]
    result = store.events.add_batch(batch)
    assert (result.accepted, result.duplicates) == (MAX_BATCH, 0)
    assert store.events.count() == MAX_BATCH
    resend = store.events.add_batch(batch)
    assert (resend.accepted, resend.duplicates) == (0, MAX_BATCH)


def test_batch_over_the_limit_is_refused(store: Store) -> None:
    batch = [EventIn(f"b-{i}", "u", "i") for i in range(MAX_BATCH + 1)]
    with pytest.raises(DataError, match="at most 10000"):
        store.events.add_batch(batch)
    assert store.events.count() == 0


_IMPOSSIBLE_EVENTS = [
    (EventIn("", "u", "i"), "event_id"),
    (EventIn("x", "", "i"), "user"),
    (EventIn("x", "u", "i" * 300), "item"),
    (EventIn("x", "u", "i", "purchase"), "event"),
    (EventIn("x", "u", "i", "view", math.nan), "timestamp"),
    (EventIn("x", "u", "i", "view", 1.0, math.inf), "value"),
    (EventIn("x", "u\x00", "i"), "user"),
    (EventIn("x", "u", "i", "view", "yesterday"), "timestamp"),  # type: ignore[arg-type]
]


def test_impossible_events_reject_the_batch_with_a_data_error(store: Store) -> None:
    good = EventIn("ok", "u", "i", "view", 1.0)
    for bad, field in _IMPOSSIBLE_EVENTS:
        with pytest.raises(DataError) as info:
            store.events.add_batch([good, bad])
        assert (info.value.field, info.value.row) == (field, 2), bad
    assert store.events.count() == 0  # nothing of a rejected batch is stored


def test_missing_timestamp_means_received_time(clocked) -> None:
    store, clock = clocked
    clock.t = 5_000.0
    store.events.add(EventIn("e", "u", "i"))
    got = store.events.get("e")
    assert got is not None
    assert got.timestamp == got.received_at == 5_000.0


def test_recent_is_newest_first_and_per_user(store: Store) -> None:
    store.events.add_batch(
        [EventIn(f"e{t}", "alice", f"i{t}", "view", float(t)) for t in (3, 1, 2)]
        + [EventIn("other", "bob", "i9", "view", 10.0)]
    )
    assert [e.item for e in store.events.recent("alice", 2)] == ["i3", "i2"]
    assert store.events.recent("nobody") == []
    assert [e.event_id for e in store.events.since(2.0)] == ["e2", "e3", "other"]


# --------------------------------------------------------------------- catalog
def test_upsert_replaces_and_keeps_creation_time(clocked) -> None:
    store, clock = clocked
    store.catalog.upsert([ItemIn("p1", "Title", "body", ("a", "b"), "news", "alice", 100.0)])
    clock.t = 2_000.0
    store.catalog.upsert([ItemIn("p1", "New title", tags=("c",))])
    item = store.catalog.get("p1")
    assert item is not None
    assert (item.title, item.text, item.tags, item.category, item.author) == (
        "New title",
        "",
        ("c",),
        "",
        "",
    )
    assert item.created_at == 100.0
    assert item.updated_at == 2_000.0
    store.catalog.upsert([ItemIn("p2")])
    p2 = store.catalog.get("p2")
    assert p2 is not None and p2.created_at == 2_000.0
    assert store.catalog.count() == 2


def test_updated_since_lists_live_items_by_update_time(clocked) -> None:
    store, clock = clocked
    store.catalog.upsert([ItemIn("old", author="a")])
    clock.t = 2_000.0
    store.catalog.upsert([ItemIn("new", category="c", author="b"), ItemIn("gone")])
    clock.t = 3_000.0
    store.catalog.upsert([ItemIn("old", author="a2")])  # an update counts too
    store.catalog.delete(["gone"])
    got = store.catalog.updated_since(1_500.0)
    assert [(i.item, i.author) for i in got] == [("new", "b"), ("old", "a2")]
    assert store.catalog.updated_since(5_000.0) == []


def test_delete_is_soft_and_hides_the_item_everywhere(clocked) -> None:
    store, clock = clocked
    store.catalog.upsert([ItemIn(f"p{i}", f"t{i}") for i in range(4)])
    clock.t = 3_000.0
    assert store.catalog.delete(["p1", "p2", "p2"]) == 2
    assert store.catalog.delete(["p1"]) == 0  # already gone: idempotent
    assert store.catalog.get("p1") is None
    deleted = store.catalog.get("p1", include_deleted=True)
    assert deleted is not None and deleted.deleted_at == 3_000.0
    assert store.catalog.all_ids() == ["p0", "p3"]
    assert set(store.catalog.get_many(["p0", "p1", "zz"])) == {"p0"}
    assert store.catalog.deleted_since(3_000.0) == ["p1", "p2"]
    assert store.catalog.deleted_since(3_000.1) == []
    assert store.catalog.count() == 2


def test_upserting_a_deleted_item_brings_it_back(store: Store) -> None:
    store.catalog.upsert([ItemIn("p", "t")])
    store.catalog.delete(["p"])
    store.catalog.upsert([ItemIn("p", "again")])
    item = store.catalog.get("p")
    assert item is not None and item.title == "again" and item.deleted_at is None


def test_deleting_an_unknown_item_records_a_tombstone(store: Store) -> None:
    assert store.catalog.delete(["never-seen"]) == 0
    assert store.catalog.get("never-seen") is None
    assert store.catalog.deleted_since(0.0) == ["never-seen"]


def test_catalog_rejects_impossible_items(store: Store) -> None:
    with pytest.raises(DataError) as info:
        store.catalog.upsert([ItemIn("ok"), ItemIn("bad", tags="a|b")])  # type: ignore[arg-type]
    assert (info.value.field, info.value.row) == ("tags", 2)
    with pytest.raises(DataError, match="NUL"):
        store.catalog.upsert([ItemIn("p", text="a\x00b")])
    assert store.catalog.count() == 0


# --------------------------------------------------------------------- users
def test_users_upsert_and_privacy(store: Store) -> None:
    store.users.upsert([UserIn("alice", ("cats", "jazz"), False, 10.0), UserIn("bob", (), True)])
    store.users.upsert([UserIn("alice", ("dogs",), True)])
    alice = store.users.get("alice")
    assert alice is not None
    assert (alice.interests, alice.private, alice.created_at) == (("dogs",), True, 10.0)
    assert store.users.private_ids() == {"alice", "bob"}
    assert store.users.get("nobody") is None
    assert store.users.count() == 2
    with pytest.raises(DataError, match="private"):
        store.users.upsert([UserIn("carol", (), "yes")])  # type: ignore[arg-type]


# --------------------------------------------------------------------- social
def test_follow_and_unfollow_are_idempotent(store: Store) -> None:
    assert store.social.follow("alice", "bob", 1.0) is True
    assert store.social.follow("alice", "bob", 2.0) is False
    assert store.social.follow("alice", "carol") is True
    assert store.social.follow("dave", "bob") is True
    assert store.social.followees("alice") == ["bob", "carol"]
    assert store.social.followers("bob") == ["alice", "dave"]
    assert store.social.unfollow("alice", "bob") is True
    assert store.social.unfollow("alice", "bob") is False
    assert store.social.followees("alice") == ["carol"]
    assert store.social.count() == 2


def test_graph_changes_since_replay_to_the_current_edges(clocked) -> None:
    store, clock = clocked
    store.social.follow("alice", "bob", 10.0)  # before the cut: not a change since
    clock.t = 100.0
    store.social.follow("alice", "carol")
    clock.t = 110.0
    store.social.unfollow("alice", "bob")
    clock.t = 120.0
    store.social.unfollow("alice", "carol")
    clock.t = 130.0
    store.social.follow("alice", "carol")  # followed again: newer than its unfollow
    clock.t = 140.0
    assert store.social.unfollow("alice", "dave") is False  # not stored here, still logged
    changes = store.social.changes_since(50.0)
    assert changes == [
        ("unfollow", "alice", "bob", 110.0),
        ("unfollow", "alice", "carol", 120.0),
        ("follow", "alice", "carol", 130.0),
        ("unfollow", "alice", "dave", 140.0),
    ]
    edges: set[tuple[str, str]] = set()
    for kind, a, b, _ in changes:
        (edges.add if kind == "follow" else edges.discard)((a, b))
    assert edges == {("alice", "carol")} and store.social.followees("alice") == ["carol"]
    assert store.social.changes_since(125.0)[0] == ("follow", "alice", "carol", 130.0)
    store.erase_user("alice")  # erasure takes the log too
    assert store.social.changes_since(0.0) == []


def test_follow_many_counts_new_edges_and_refuses_self_follow(store: Store) -> None:
    edges = [Follow("a", "b", 1.0), Follow("a", "c", 1.0), Follow("a", "b", 1.0)]
    assert store.social.follow_many(edges) == 2
    with pytest.raises(DataError, match="themselves"):
        store.social.follow("a", "a")
    with pytest.raises(DataError) as info:
        store.social.follow_many([Follow("x", "y", 1.0), Follow("x", "", 1.0)])
    assert (info.value.field, info.value.row) == ("followee", 2)
    assert store.social.count() == 2


# --------------------------------------------------------------------- models
def test_model_versions_activate_and_roll_back(store: Store) -> None:
    v1 = store.models.register("als", "/art/1", {"ndcg@10": 0.1})
    v2 = store.models.register("pipeline", "/art/2", {"ndcg@10": 0.2})
    v3 = store.models.register("pipeline", "/art/3")
    assert [m.version for m in store.models.list()] == ["v1", "v2", "v3"]
    assert v1.metrics == {"ndcg@10": 0.1}
    assert v1.status == "registered" and not v1.active
    assert store.models.active() is None

    store.models.activate(v1.version)
    store.models.activate(v2.version)
    store.models.activate(v2.version)  # already active: no new history entry
    now = store.models.activate(v3.version)
    assert now.active and now.status == "active"
    assert [m.version for m in store.models.list() if m.active] == ["v3"]
    prior = store.models.get("v2")
    assert prior is not None and prior.status == "retired"

    assert store.models.rollback().version == "v2"
    assert store.models.rollback().version == "v1"
    active = store.models.active()
    assert active is not None and active.version == "v1"
    with pytest.raises(SerendipError, match="roll back"):
        store.models.rollback()


def test_model_errors(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.models.activate("v404")
    with pytest.raises(SerendipError, match="roll back"):
        store.models.rollback()
    store.models.register("als", "/a", version="prod-1")
    with pytest.raises(DataError, match="already exists"):
        store.models.register("als", "/b", version="prod-1")
    failed = store.models.mark_failed("prod-1", "manifest missing")
    assert (failed.status, failed.error, failed.active) == ("failed", "manifest missing", False)
    ok = store.models.activate("prod-1")
    assert (ok.status, ok.error) == ("active", None)


def test_concurrent_activations_leave_exactly_one_active(store: Store) -> None:
    import threading

    versions = [store.models.register("m", f"/a/{i}").version for i in range(6)]
    errors: list[BaseException] = []

    def flip(v: str) -> None:
        try:
            for _ in range(3):
                store.models.activate(v)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len([m for m in store.models.list() if m.active]) == 1


def test_updated_since_searches_by_update_time_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The follower asks every second: the query must use the updated_at index, not walk the
    live items (SQLite without statistics took the deleted_at index, every live row)."""
    from sqlalchemy import event

    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.catalog.upsert([ItemIn(f"i{j}") for j in range(50)])
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM items" in statement:
            seen.append((statement, params))

    engine = store.database.engine
    event.listen(engine, "before_cursor_execute", record)
    store.catalog.updated_since(0.0)
    event.remove(engine, "before_cursor_execute", record)
    ((statement, params),) = seen
    with engine.connect() as conn:
        plan = " ".join(
            str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
        )
    assert "ix_items_updated_at" in plan, plan
    store.close()
