"""Consent switches and the erasure log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, delete, func, select

from serendip.store.repositories import _check_id, _Repository
from serendip.store.schema import ConsentRow, ErasureRow

__all__ = ["Consent", "ConsentRepository", "Erasure", "ErasureRepository"]

CONSENTS: Table = ConsentRow.__table__  # type: ignore[assignment]
ERASURES: Table = ErasureRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Consent:
    """`personalization`: the user gets personal lists (else non-personalized ones);
    `activity_for_others`: the user's activity may shape other users' recommendations.
    A user without a stored row has both on (`updated_at` None)."""

    user: str
    personalization: bool = True
    activity_for_others: bool = True
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    id: int
    subject: str
    receipt: dict[str, Any]
    at: float


class ConsentRepository(_Repository):
    def get(self, user: str) -> Consent:
        """The user's consent (the defaults when none is stored)."""
        with self._db.read() as conn:
            row = conn.execute(select(CONSENTS).where(CONSENTS.c.user_id == user)).first()
        return Consent(user) if row is None else _consent(row)

    def update(
        self,
        user: str,
        *,
        personalization: bool | None = None,
        activity_for_others: bool | None = None,
    ) -> Consent:
        """Change the given switches (None keeps the current value); returns the new state."""
        _check_id(user, "user")
        current = self.get(user)
        new = Consent(
            user,
            current.personalization if personalization is None else bool(personalization),
            current.activity_for_others
            if activity_for_others is None
            else bool(activity_for_others),
            self._clock(),
        )
        row = {
            "user_id": user,
            "personalization": new.personalization,
            "activity_for_others": new.activity_for_others,
            "updated_at": new.updated_at,
        }
        ins = self._insert(CONSENTS)
        stmt = ins.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                c: ins.excluded[c] for c in ("personalization", "activity_for_others", "updated_at")
            },
        )
        with self._db.write() as conn:
            conn.execute(stmt, [row])
        return new

    def withheld_activity(self) -> set[str]:
        """Users whose activity must not shape other users' recommendations."""
        q = select(CONSENTS.c.user_id).where(CONSENTS.c.activity_for_others.is_(False))
        with self._db.read() as conn:
            return set(conn.execute(q).scalars())

    def not_personalized(self) -> set[str]:
        """Users who turned personalization off."""
        q = select(CONSENTS.c.user_id).where(CONSENTS.c.personalization.is_(False))
        with self._db.read() as conn:
            return set(conn.execute(q).scalars())

    def updated_since(self, timestamp: float) -> list[Consent]:
        """Consents changed at or after `timestamp`, oldest change first (what another server
        set: `serendip.service.follower`). The table holds only users who changed a switch."""
        q = (
            select(CONSENTS)
            .where(CONSENTS.c.updated_at >= timestamp)
            .order_by(CONSENTS.c.updated_at, CONSENTS.c.user_id)
        )
        with self._db.read() as conn:
            return [_consent(r) for r in conn.execute(q)]

    def delete(self, user: str) -> int:
        with self._db.write() as conn:
            return int(conn.execute(delete(CONSENTS).where(CONSENTS.c.user_id == user)).rowcount)


def _consent(r: Row[Any]) -> Consent:
    return Consent(r.user_id, bool(r.personalization), bool(r.activity_for_others), r.updated_at)


class ErasureRepository(_Repository):
    """Who was erased, as keyed hashes (`subject`), with the receipt of what was removed."""

    def record(self, subject: str, receipt: dict[str, Any]) -> Erasure:
        now = self._clock()
        with self._db.write() as conn:
            res = conn.execute(ERASURES.insert().values(subject=subject, receipt=receipt, at=now))
            key = res.inserted_primary_key
        return Erasure(int(key[0]) if key else 0, subject, dict(receipt), now)

    def subjects(self) -> set[str]:
        with self._db.read() as conn:
            return set(conn.execute(select(ERASURES.c.subject)).scalars())

    def after(self, row_id: int) -> list[Erasure]:
        """Erasures recorded after row `row_id`, in order (another server's, for the follower)."""
        q = select(ERASURES).where(ERASURES.c.id > row_id).order_by(ERASURES.c.id)
        with self._db.read() as conn:
            rows = conn.execute(q).all()
        return [Erasure(r.id, r.subject, dict(r.receipt or {}), r.at) for r in rows]

    def last_id(self) -> int:
        """The newest erasure's row ID (0: none)."""
        with self._db.read() as conn:
            return int(conn.execute(select(func.max(ERASURES.c.id))).scalar() or 0)

    def list(self) -> list[Erasure]:
        return self.after(0)
