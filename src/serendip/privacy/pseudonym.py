"""Keyed pseudonyms of external user IDs, and the keyed hash that records an erasure.

With a secret, `Pseudonymizer.user` replaces a platform's raw user ID by
`PREFIX + hex(HMAC-SHA256(secret, raw))[:32]` (128 bits): stable (the same raw ID always maps to
the same pseudonym, so a user's events, follows and consent line up), not reversible without the
secret, and recognisable by its prefix. Applied at ingestion (the service's routes), the store
never holds a raw ID; export and erasure take the raw ID and look it up through the same map.
Without a secret it is the identity, and the store holds the IDs as given.

Erasures are recorded as `erasure_subject(key, stored_id)`: a keyed hash under a different
label, so the erasure log neither names the user nor equals their pseudonym. The key is the
pseudonym secret when one is set, else a per-installation key kept outside the database, in
the artifacts directory (`installation_key`): the database alone cannot be used to test
whether a guessed ID was erased.

>>> p = Pseudonymizer(b"s3cret")
>>> p.user("alice") == p.user("alice"), p.user("alice").startswith(PREFIX)
(True, True)
>>> Pseudonymizer(None).user("alice")
'alice'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from serendip.errors import ConfigError

__all__ = [
    "KEY_FILE",
    "PREFIX",
    "Pseudonymizer",
    "erasure_key",
    "erasure_subject",
    "installation_key",
    "keyed_hash",
]

#: Prefix of every pseudonym: a pseudonym is never mistaken for a raw ID of the same
#: installation (pseudonymization is on for every ID or for none).
PREFIX = "p~"
#: The per-installation erasure key's file name under the artifacts directory.
KEY_FILE = ".erasure-key"
_HEX = 32  # 128 bits of the HMAC


def keyed_hash(key: bytes, label: str, value: str) -> str:
    """Hex HMAC-SHA256 of `label` + NUL + `value` under `key`, cut to 128 bits."""
    msg = label.encode() + b"\x00" + value.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:_HEX]


class Pseudonymizer:
    """Raw external user ID -> the ID the store keeps (identity without a secret)."""

    def __init__(self, secret: bytes | None) -> None:
        if secret is not None and len(secret) < 16:
            raise ConfigError("the pseudonym secret must be at least 16 bytes long")
        self._secret = secret

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def user(self, raw: str) -> str:
        """The stored ID of `raw`: `p~` + 32 hex characters, or `raw` itself without a secret."""
        if self._secret is None:
            return raw
        return PREFIX + keyed_hash(self._secret, "user", raw)

    def users(self, raw: list[str]) -> list[str]:
        return [self.user(r) for r in raw]


def installation_key(artifacts_dir: Path) -> bytes:
    """The installation's erasure key, created (32 random bytes, owner-only) on first use in
    `artifacts_dir/.erasure-key`. Keep it with the artifacts' backups: without it, later
    imports cannot recognise the users erased before."""
    path = Path(artifacts_dir) / KEY_FILE
    if path.is_file():
        key = path.read_bytes()
        if len(key) < 16:
            raise ConfigError(f"{path}: the erasure key is shorter than 16 bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def erasure_key(secret: bytes | None, artifacts_dir: Path) -> bytes:
    """The key of the erasure log: the pseudonym secret when set, else the installation key."""
    return secret if secret is not None else installation_key(artifacts_dir)


def erasure_subject(key: bytes, stored_id: str) -> str:
    """How the erasure log names the user whose stored ID is `stored_id`."""
    return keyed_hash(key, "erasure", stored_id)
