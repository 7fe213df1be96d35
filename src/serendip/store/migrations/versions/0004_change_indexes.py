"""Indexes for following the store's changes: several servers on one store poll the catalog
upserts, profile updates and new follows since their last look (`serendip.service.follower`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_items_updated_at", "items", ["updated_at"])
    op.create_index("ix_users_updated_at", "users", ["updated_at"])
    op.create_index("ix_follows_created_at", "follows", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_follows_created_at", table_name="follows")
    op.drop_index("ix_users_updated_at", table_name="users")
    op.drop_index("ix_items_updated_at", table_name="items")
