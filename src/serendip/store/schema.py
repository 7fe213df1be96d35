"""The tables, as SQLAlchemy 2 declarative models.

Used for queries (Core statements on `Model.__table__`) and as the reference the migrations must
match; the tables themselves are created only by Alembic (`migrations/versions/`). Column names
avoid SQL keywords (`user_id`, not `user`). Times are float64 epoch seconds, as in `Dataset`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from serendip.store.types import MAX_ID_LENGTH

__all__ = [
    "Base",
    "ConsentRow",
    "ErasureRow",
    "EventRow",
    "ExperimentRow",
    "ExposureRow",
    "FollowRow",
    "ItemRow",
    "ModelActivationRow",
    "ModelVersionRow",
    "UnfollowRow",
    "UserRow",
]

#: Autoincrement key: 64-bit on PostgreSQL, SQLite's rowid alias (which must be INTEGER).
_BigId = BigInteger().with_variant(Integer(), "sqlite")
_Id = String(MAX_ID_LENGTH)


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """The interaction log: append-only, deduplicated by `event_id`."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(_Id)
    user_id: Mapped[str] = mapped_column(_Id)
    item_id: Mapped[str] = mapped_column(_Id)
    event: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[float] = mapped_column(Double)
    value: Mapped[float | None] = mapped_column(Double, nullable=True)
    received_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        UniqueConstraint("event_id", name="uq_events_event_id"),
        # recent events of a user (online history, export, erasure)
        Index("ix_events_user_ts", "user_id", "timestamp"),
        # training windows (to_dataset since/until)
        Index("ix_events_ts", "timestamp"),
    )


class ItemRow(Base):
    """The catalog. Deletion is soft (`deleted_at`), so one column hides an item everywhere."""

    __tablename__ = "items"
    item_id: Mapped[str] = mapped_column(_Id, primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), default="")
    author: Mapped[str] = mapped_column(_Id, default="")
    created_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double)
    deleted_at: Mapped[float | None] = mapped_column(Double, nullable=True)

    __table_args__ = (
        Index("ix_items_deleted_at", "deleted_at"),
        Index("ix_items_author", "author"),
        Index("ix_items_updated_at", "updated_at"),  # servers following the catalog
    )


class UserRow(Base):
    __tablename__ = "users"
    user_id: Mapped[str] = mapped_column(_Id, primary_key=True)
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_users_updated_at", "updated_at"),)


class FollowRow(Base):
    """Directed edges follower -> followee; the primary key makes each pair unique and serves
    "whom does X follow"; the followee index serves "who follows Y"."""

    __tablename__ = "follows"
    follower: Mapped[str] = mapped_column(_Id)
    followee: Mapped[str] = mapped_column(_Id)
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        PrimaryKeyConstraint("follower", "followee", name="pk_follows"),
        Index("ix_follows_followee", "followee"),
        Index("ix_follows_created_at", "created_at"),  # servers following the graph
    )


class UnfollowRow(Base):
    """Unfollow log, one row per removed edge: `follows` holds only the edges that exist, so
    without it a restarted server could not replay the unfollows made since its model's fit."""

    __tablename__ = "unfollows"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    follower: Mapped[str] = mapped_column(_Id)
    followee: Mapped[str] = mapped_column(_Id)
    at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        Index("ix_unfollows_at", "at"),
        Index("ix_unfollows_follower", "follower"),  # erasure
    )


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(_Id)
    name: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # where the version came from: data window, parameters, code version, parent version
    lineage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        UniqueConstraint("version", name="uq_model_versions_version"),
        # at most one active version, whatever a buggy or concurrent writer does
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )


class ModelActivationRow(Base):
    """Activation log: each `activate` pushes a version, each `rollback` pops one; replaying
    the log gives the stack that rollback walks back through."""

    __tablename__ = "model_activations"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(_Id)
    action: Mapped[str] = mapped_column(String(16))  # "activate" | "rollback"
    at: Mapped[float] = mapped_column(Double)


class ExposureRow(Base):
    """One served list: who saw which items, in which order, from which model version and
    experiment variant. Outcomes are the events that follow (attributed within a window)."""

    __tablename__ = "exposures"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(_Id)
    user_id: Mapped[str] = mapped_column(_Id)
    surface: Mapped[str] = mapped_column(String(32))  # "recommend" | "similar" | "trending" ...
    items: Mapped[list[str]] = mapped_column(JSON)  # in served order (position = index)
    model_version: Mapped[str | None] = mapped_column(_Id, nullable=True)
    experiment: Mapped[str | None] = mapped_column(_Id, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH), nullable=True)
    # per-item origin when the list was interleaved ("a"/"b"), else empty
    teams: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        Index("ix_exposures_user_at", "user_id", "at"),
        Index("ix_exposures_experiment_at", "experiment", "at"),
        Index("ix_exposures_at", "at"),
    )


class ExperimentRow(Base):
    """An A/B test or interleaving experiment; `spec` holds variants, shares, metrics, the
    attribution window and the assignment salt. `status`: draft, running or stopped."""

    __tablename__ = "experiments"
    experiment_id: Mapped[str] = mapped_column(_Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "ab" | "interleaving"
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    stopped_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class ConsentRow(Base):
    """A user's consent switches (absent row: the defaults, all True). Kept apart from the
    profile so a profile update never resets consent."""

    __tablename__ = "consents"
    user_id: Mapped[str] = mapped_column(_Id, primary_key=True)
    personalization: Mapped[bool] = mapped_column(Boolean)
    activity_for_others: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[float] = mapped_column(Double)


class ErasureRow(Base):
    """Erasure log. `subject` is a keyed hash of the erased user's ID, never the ID itself, so
    later imports and fits can exclude the user without the store keeping who they were."""

    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(128))
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_erasures_subject", "subject"),)
