"""The store's privacy rules: a complete export (exposures, experiment assignments, consent),
an erasure that leaves no row naming the user, erased users kept out of imports and training
exports, withheld users' interactions kept out of fits."""

from __future__ import annotations

import logging

import pytest

from serendip.privacy.pseudonym import erasure_subject
from serendip.store import EventIn, ItemIn, Store, UserIn
from serendip.store.operations import ExposureIn
from tests.conftest import make_toy_platform

KEY = b"k" * 32


def _fill(store: Store) -> None:
    store.users.upsert([UserIn("alice", ("jazz",), False, 1.0), UserIn("bob", (), False, 1.0)])
    store.catalog.upsert([ItemIn("i1", "Alice's post", author="alice"), ItemIn("i2", "x")])
    store.events.add_batch(
        [EventIn("e1", "alice", "i2", "like", 10.0), EventIn("e2", "bob", "i1", "like", 11.0)]
    )
    store.social.follow("alice", "bob", 1.0)
    store.social.follow("bob", "alice", 1.0)
    store.social.follow("carol", "alice", 1.0)
    store.social.unfollow("carol", "alice")
    store.exposures.add_many(
        [
            ExposureIn("r1", "alice", "home", ("i1", "i2"), "v1", "exp-a", "treatment", at=5.0),
            ExposureIn("r2", "alice", "home", ("i2",), "v1", "exp-a", "treatment", at=6.0),
            ExposureIn("r3", "alice", "home", ("i1",), "v2", at=7.0),
            ExposureIn("r4", "bob", "home", ("i1",), "v1", "exp-a", "control", at=5.0),
        ]
    )
    store.consents.update("alice", personalization=False)


def test_the_export_holds_exposures_experiments_and_consent(store: Store) -> None:
    _fill(store)
    data = store.export_user("alice")
    exposures = data["exposures"]["records"]
    assert [e["request_id"] for e in exposures] == ["r1", "r2", "r3"]
    assert exposures[0]["items"] == ["i1", "i2"] and exposures[0]["variant"] == "treatment"
    assert data["experiments"]["records"] == [
        {
            "experiment": "exp-a",
            "variant": "treatment",
            "first_exposed_at": 5.0,
            "last_exposed_at": 6.0,
            "exposures": 2,
        }
    ]
    consent = data["consent"]["records"][0]
    assert (consent["personalization"], consent["activity_for_others"], consent["stored"]) == (
        False,
        True,
        True,
    )
    assert all(data[s]["note"] for s in ("exposures", "experiments", "consent"))
    assert "control" not in str(data)  # bob's assignment is bob's
    store.consents.delete("alice")
    store.users.upsert([UserIn("dan", (), False, 1.0)])
    assert store.export_user("nobody")["has_data"] is False


def test_erasure_leaves_no_row_naming_the_user(store: Store) -> None:
    _fill(store)
    store.erasure_subject = lambda u: erasure_subject(KEY, u)
    counts = store.erase_user("alice", author_tombstone=store.author_tombstone("alice"))
    assert counts == {
        "events": 1,
        "follows": 2,
        "unfollows": 1,
        "exposures": 3,
        "consent": 1,
        "profile": 1,
        "authored_items_reattributed": 1,
    }
    item = store.catalog.get("i1")
    assert item is not None and item.author.startswith("erased~") and "alice" not in item.author
    assert store.export_user("alice")["has_data"] is False
    assert [e.request_id for e in store.exposures.for_user("bob")] == ["r4"]


def test_erased_users_stay_out_of_imports_and_training_exports(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    toy = make_toy_platform()
    who = str(toy.item_meta.author[0])  # an author: their items stay, re-attributed
    store.erasures.record(erasure_subject(KEY, who), {"store": {}})
    with caplog.at_level(logging.WARNING, logger="serendip.store"):
        assert store.erased_among([who]) == set()  # no key: nothing can be recognised
    assert "no erasure key" in caplog.text
    store.erasure_subject = lambda u: erasure_subject(KEY, u)
    assert store.erased_among([who, "u012"]) == {who} and store.is_erased(who)
    counts = store.import_dataset(toy)
    assert counts["erased_skipped"] == 1
    assert counts["events"] == len(toy.interactions) - int(
        (toy.interactions.user == toy.users.get(who)).sum()
    )
    ds = store.to_dataset()
    assert who not in ds.users.ids.astype(str)
    assert who not in set(ds.social_frame()["follower"]) | set(ds.social_frame()["followee"])
    authors = {str(a) for a in ds.item_meta.author}
    assert who not in authors and store.author_tombstone(who) in authors


def test_a_withheld_users_interactions_stay_out_of_the_training_export(store: Store) -> None:
    _fill(store)
    store.consents.update("alice", activity_for_others=False)
    ds = store.to_dataset()
    u = ds.users.get("alice")
    assert u >= 0 and bool(ds.user_meta.private[u])
    assert int((ds.interactions.user == u).sum()) == 0 and len(ds.interactions) == 1
    assert "alice" in set(ds.social_frame()["follower"])  # their own follows stay
    assert len(store.to_dataset(honour_consent=False).interactions) == 2


def test_changed_consents_and_new_erasures_are_read_in_order(store: Store) -> None:
    # what the follower of another server reads (serendip.service.follower)
    assert store.erasures.last_id() == 0
    first = store.erasures.record("s1", {})
    second = store.erasures.record("s2", {"store": {"events": 3}})
    assert store.erasures.last_id() == second.id > first.id
    assert [e.subject for e in store.erasures.after(0)] == ["s1", "s2"]
    assert [e.subject for e in store.erasures.after(first.id)] == ["s2"]
    assert store.erasures.after(second.id) == []
    before = store.consents.update("alice", personalization=False).updated_at
    assert before is not None
    store.consents.update("bob", activity_for_others=False)
    assert [c.user for c in store.consents.updated_since(before)] == ["alice", "bob"]
    assert store.consents.updated_since(before + 3_600) == []
