"""Retention: events and exposures older than the window go, the rest stays; no model reads a
demographic attribute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serendip.errors import ConfigError
from serendip.privacy.retention import DAY, purge
from serendip.store import EventIn, Store
from serendip.store.operations import ExposureIn

NOW = 1_700_000_000.0


def test_purge_deletes_only_what_is_older_than_the_window(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.events.add_batch(
        [
            EventIn("old", "a", "i1", "like", NOW - 40 * DAY),
            EventIn("edge", "a", "i2", "like", NOW - 30 * DAY + 1),
            EventIn("new", "b", "i1", "view", NOW - DAY),
        ]
    )
    store.exposures.add_many(
        [
            ExposureIn("r1", "a", "home", ("i1",), at=NOW - 31 * DAY),
            ExposureIn("r2", "a", "home", ("i2",), at=NOW - 2 * DAY),
        ]
    )
    result = purge(store, 30, now=NOW)
    assert (result.events, result.exposures, result.cutoff) == (1, 1, NOW - 30 * DAY)
    assert store.events.get("old") is None and store.events.get("edge") is not None
    assert [e.request_id for e in store.exposures.for_user("a")] == ["r2"]
    assert purge(store, 30, now=NOW).events == 0  # idempotent
    with pytest.raises(ConfigError, match="positive"):
        purge(store, 0)
    store.close()


def test_no_model_reads_a_demographic_attribute() -> None:
    """The user attributes models and sources read are declared interests and the privacy
    flag: nothing like age, gender or location is stored or read."""
    src = Path(__file__).resolve().parents[2] / "src" / "serendip"
    read = set()
    for package in ("models", "pipeline", "serving"):
        for path in (src / package).rglob("*.py"):
            read |= set(re.findall(r"user_meta\.(\w+)", path.read_text()))
    assert read <= {"interests", "private", "created_at"}, read
    schema = (src / "store" / "schema.py").read_text()
    users = schema[schema.index("class UserRow") : schema.index("class FollowRow")]
    columns = set(re.findall(r"^    (\w+): Mapped", users, flags=re.M))
    assert columns == {"user_id", "interests", "private", "created_at", "updated_at"}, columns
