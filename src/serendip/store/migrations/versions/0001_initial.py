"""Initial schema: events, items, users, follows, model versions and their activation log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = 256
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(_ID), nullable=False),
        sa.Column("user_id", sa.String(_ID), nullable=False),
        sa.Column("item_id", sa.String(_ID), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_user_ts", "events", ["user_id", "timestamp"])
    op.create_index("ix_events_ts", "events", ["timestamp"])

    op.create_table(
        "items",
        sa.Column("item_id", sa.String(_ID), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(_ID), nullable=False, server_default=""),
        sa.Column("author", sa.String(_ID), nullable=False, server_default=""),
        sa.Column("created_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("deleted_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_items_deleted_at", "items", ["deleted_at"])
    op.create_index("ix_items_author", "items", ["author"])

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(_ID), primary_key=True),
        sa.Column("interests", sa.JSON(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
    )

    op.create_table(
        "follows",
        sa.Column("follower", sa.String(_ID), nullable=False),
        sa.Column("followee", sa.String(_ID), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("follower", "followee", name="pk_follows"),
    )
    op.create_index("ix_follows_followee", "follows", ["followee"])

    op.create_table(
        "model_versions",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(_ID), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="registered"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("version", name="uq_model_versions_version"),
    )
    op.create_index(
        "uq_model_versions_one_active",
        "model_versions",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "model_activations",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(_ID), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_activations")
    op.drop_index("uq_model_versions_one_active", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index("ix_follows_followee", table_name="follows")
    op.drop_table("follows")
    op.drop_table("users")
    op.drop_index("ix_items_author", table_name="items")
    op.drop_index("ix_items_deleted_at", table_name="items")
    op.drop_table("items")
    op.drop_index("ix_events_ts", table_name="events")
    op.drop_index("ix_events_user_ts", table_name="events")
    op.drop_table("events")
