"""Exposures (the lists users were shown) and experiments, for A/B tests, interleaving and
the live monitors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Table, delete, select, update

from serendip.errors import DataError
from serendip.store.repositories import _check_id, _Repository
from serendip.store.schema import ExperimentRow, ExposureRow
from serendip.store.types import NotFoundError

__all__ = [
    "EXPERIMENT_KINDS",
    "EXPERIMENT_STATUSES",
    "Experiment",
    "ExperimentRepository",
    "Exposure",
    "ExposureIn",
    "ExposureRepository",
]

EXPOSURES: Table = ExposureRow.__table__  # type: ignore[assignment]
EXPERIMENTS: Table = ExperimentRow.__table__  # type: ignore[assignment]

EXPERIMENT_KINDS = ("ab", "interleaving")
EXPERIMENT_STATUSES = ("draft", "running", "stopped")


@dataclass(frozen=True, slots=True)
class ExposureIn:
    """One served list; `at` None means now. `teams[i]` names the ranker that contributed
    `items[i]` in an interleaved list (empty otherwise)."""

    request_id: str
    user: str
    surface: str
    items: tuple[str, ...]
    model_version: str | None = None
    experiment: str | None = None
    variant: str | None = None
    teams: tuple[str, ...] = ()
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Exposure:
    id: int
    request_id: str
    user: str
    surface: str
    items: tuple[str, ...]
    model_version: str | None
    experiment: str | None
    variant: str | None
    teams: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    kind: str
    spec: dict[str, Any] = field(default_factory=dict)
    status: str = "draft"
    created_at: float = 0.0
    started_at: float | None = None
    stopped_at: float | None = None


class ExposureRepository(_Repository):
    """Served lists, append-only (erasure deletes a user's rows)."""

    def add_many(self, exposures: Sequence[ExposureIn]) -> int:
        """Store exposures in one transaction; durable when this returns."""
        if not exposures:
            return 0
        now = self._clock()
        rows = []
        for i, e in enumerate(exposures, start=1):
            if len(e.teams) not in (0, len(e.items)):
                raise DataError("teams must be empty or name one ranker per item", row=i)
            rows.append(
                {
                    "request_id": _check_id(e.request_id, "request_id", i),
                    "user_id": _check_id(e.user, "user", i),
                    "surface": e.surface,
                    "items": list(e.items),
                    "model_version": e.model_version,
                    "experiment": e.experiment,
                    "variant": e.variant,
                    "teams": list(e.teams),
                    "at": now if e.at is None else float(e.at),
                }
            )
        with self._db.write() as conn:
            conn.execute(EXPOSURES.insert(), rows)
        return len(rows)

    def between(
        self, start: float, end: float | None = None, *, experiment: str | None = None
    ) -> list[Exposure]:
        """Exposures with `start <= at < end` (no end: up to now), oldest first; only those of
        `experiment` when given."""
        q = select(EXPOSURES).where(EXPOSURES.c.at >= start)
        if end is not None:
            q = q.where(EXPOSURES.c.at < end)
        if experiment is not None:
            q = q.where(EXPOSURES.c.experiment == experiment)
        with self._db.read() as conn:
            return [_exposure(r) for r in conn.execute(q.order_by(EXPOSURES.c.at, EXPOSURES.c.id))]

    def for_user(self, user: str) -> list[Exposure]:
        """A user's exposures, oldest first (export)."""
        q = select(EXPOSURES).where(EXPOSURES.c.user_id == user)
        with self._db.read() as conn:
            return [_exposure(r) for r in conn.execute(q.order_by(EXPOSURES.c.at, EXPOSURES.c.id))]

    def delete_user(self, user: str) -> int:
        """Erase a user's exposures; returns the rows deleted."""
        with self._db.write() as conn:
            return int(conn.execute(delete(EXPOSURES).where(EXPOSURES.c.user_id == user)).rowcount)

    def count(self) -> int:
        return self._count(EXPOSURES)


def _exposure(r: Row[Any]) -> Exposure:
    return Exposure(
        r.id,
        r.request_id,
        r.user_id,
        r.surface,
        tuple(r.items or ()),
        r.model_version,
        r.experiment,
        r.variant,
        tuple(r.teams or ()),
        r.at,
    )


class ExperimentRepository(_Repository):
    """Experiments and their lifecycle: draft -> running -> stopped."""

    def create(self, experiment_id: str, kind: str, spec: dict[str, Any]) -> Experiment:
        """A new draft experiment; DataError if the ID is taken or the kind unknown."""
        _check_id(experiment_id, "experiment_id")
        if kind not in EXPERIMENT_KINDS:
            raise DataError(f"must be one of {', '.join(EXPERIMENT_KINDS)}", field="kind")
        now = self._clock()
        with self._db.write() as conn:
            taken = conn.execute(
                select(EXPERIMENTS.c.experiment_id).where(
                    EXPERIMENTS.c.experiment_id == experiment_id
                )
            ).first()
            if taken is not None:
                raise DataError(f"experiment '{experiment_id}' exists", field="experiment_id")
            conn.execute(
                EXPERIMENTS.insert().values(
                    experiment_id=experiment_id,
                    kind=kind,
                    spec=spec,
                    status="draft",
                    created_at=now,
                )
            )
        return Experiment(experiment_id, kind, dict(spec), "draft", now)

    def get(self, experiment_id: str) -> Experiment | None:
        q = select(EXPERIMENTS).where(EXPERIMENTS.c.experiment_id == experiment_id)
        with self._db.read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _experiment(row)

    def list(self, status: str | None = None) -> list[Experiment]:
        """Experiments, oldest first; only those in `status` when given."""
        q = select(EXPERIMENTS)
        if status is not None:
            q = q.where(EXPERIMENTS.c.status == status)
        with self._db.read() as conn:
            return [_experiment(r) for r in conn.execute(q.order_by(EXPERIMENTS.c.created_at))]

    def start(self, experiment_id: str) -> Experiment:
        """draft -> running; NotFoundError if unknown, DataError from any other status."""
        return self._move(experiment_id, "draft", "running", "started_at")

    def stop(self, experiment_id: str) -> Experiment:
        """running -> stopped; NotFoundError if unknown, DataError from any other status."""
        return self._move(experiment_id, "running", "stopped", "stopped_at")

    def _move(self, experiment_id: str, src: str, dst: str, stamp: str) -> Experiment:
        now = self._clock()
        with self._db.write() as conn:
            row = conn.execute(
                select(EXPERIMENTS).where(EXPERIMENTS.c.experiment_id == experiment_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no experiment '{experiment_id}'")
            if row.status != src:
                raise DataError(
                    f"experiment '{experiment_id}' is {row.status}, not {src}", field="status"
                )
            conn.execute(
                update(EXPERIMENTS)
                .where(EXPERIMENTS.c.experiment_id == experiment_id)
                .values(status=dst, **{stamp: now})
            )
        got = self.get(experiment_id)
        assert got is not None
        return got


def _experiment(r: Row[Any]) -> Experiment:
    return Experiment(
        r.experiment_id,
        r.kind,
        dict(r.spec or {}),
        r.status,
        r.created_at,
        r.started_at,
        r.stopped_at,
    )
