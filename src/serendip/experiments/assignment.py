"""Sticky variant assignment: a salted hash of the user ID, the same in every process.

No state is kept: the variant is a pure function of (salt, user, variants), so every worker
process and every restart agrees without coordination, and changing the salt reshuffles users
(a new experiment must not inherit the last one's split).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence

from serendip.errors import DataError

__all__ = ["assign", "check_shares", "new_salt", "unit_hash"]

_SHARE_TOLERANCE = 1e-9


def unit_hash(salt: str, user: str) -> float:
    """A uniform number in [0, 1) from blake2b(salt, user): 53 bits, stable across processes,
    platforms and Python versions (unlike `hash`, which is randomised per process)."""
    digest = hashlib.blake2b(
        user.encode("utf-8"), digest_size=8, key=salt.encode("utf-8")[:64]
    ).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def check_shares(variants: Sequence[tuple[str, float]]) -> None:
    """DataError unless there is at least one variant, names are unique and non-empty, every
    share is finite and > 0, and the shares sum to 1 within 1e-9."""
    if not variants:
        raise DataError("an experiment needs at least one variant", field="variants")
    names = [name for name, _ in variants]
    if any(not name for name in names):
        raise DataError("variant names must be non-empty", field="variants")
    if len(set(names)) != len(names):
        raise DataError(f"variant names must be unique, got {names}", field="variants")
    for name, share in variants:
        if not math.isfinite(share) or share <= 0:
            raise DataError(
                f"variant '{name}' has share {share}; shares must be > 0", field="share"
            )
    total = math.fsum(share for _, share in variants)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise DataError(f"variant shares must sum to 1, they sum to {total!r}", field="share")


def assign(user: str, salt: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant `user` sees: the hash of (salt, user) mapped to [0, 1) and looked up in the
    cumulative shares, in the order given.

    Sticky (same answer on every call and in every process) and balanced (over many users each
    variant gets its share). DataError on bad shares (see `check_shares`) or an empty salt.

    >>> assign("u1", "s", [("control", 0.5), ("treatment", 0.5)]) in {"control", "treatment"}
    True
    """
    if not salt:
        raise DataError("the assignment salt must be non-empty", field="salt")
    check_shares(variants)
    u = unit_hash(salt, user)
    cumulative = 0.0
    for name, share in variants:
        cumulative += share
        if u < cumulative:
            return name
    return variants[-1][0]  # u within float rounding of 1.0


def new_salt() -> str:
    """A fresh random salt (32 hex characters) for a new experiment."""
    return secrets.token_hex(16)
