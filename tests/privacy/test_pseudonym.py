"""Keyed pseudonyms: stable, keyed, prefixed, identity without a secret; the erasure key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from serendip.errors import ConfigError
from serendip.privacy.pseudonym import (
    KEY_FILE,
    PREFIX,
    Pseudonymizer,
    erasure_key,
    erasure_subject,
    installation_key,
)

SECRET = b"0123456789abcdef-secret"


def test_pseudonyms_are_stable_keyed_and_prefixed() -> None:
    p = Pseudonymizer(SECRET)
    a = p.user("alice")
    assert a == Pseudonymizer(SECRET).user("alice")  # stable across instances (restarts)
    assert a.startswith(PREFIX) and len(a) == len(PREFIX) + 32 and "alice" not in a
    assert a != p.user("alice ") and a != p.user("bob")
    assert a != Pseudonymizer(b"another-secret-of-16+").user("alice")  # keyed
    assert p.users(["alice", "bob"]) == [a, p.user("bob")]
    assert p.enabled and not Pseudonymizer(None).enabled


def test_without_a_secret_ids_pass_unchanged() -> None:
    assert Pseudonymizer(None).user("alice") == "alice"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="16 bytes"):
        Pseudonymizer(b"short")


def test_the_installation_key_is_made_once_owner_only(tmp_path: Path) -> None:
    key = installation_key(tmp_path / "artifacts")
    path = tmp_path / "artifacts" / KEY_FILE
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert installation_key(tmp_path / "artifacts") == key
    assert erasure_key(SECRET, tmp_path / "elsewhere") == SECRET  # the secret when set
    assert not (tmp_path / "elsewhere").exists()


def test_erasure_subjects_differ_from_pseudonyms_and_name_nobody() -> None:
    stored = Pseudonymizer(SECRET).user("alice")
    subject = erasure_subject(SECRET, stored)
    assert subject != stored.removeprefix(PREFIX) and stored not in subject
    assert subject == erasure_subject(SECRET, stored)
    assert erasure_subject(b"x" * 32, "alice") != erasure_subject(b"y" * 32, "alice")
