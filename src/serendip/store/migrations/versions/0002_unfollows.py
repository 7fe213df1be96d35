"""Unfollow log: the follows table holds only the edges that exist, so a restarted server could
not tell which edges were removed since its model was fitted; this log can.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = 256
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "unfollows",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("follower", sa.String(_ID), nullable=False),
        sa.Column("followee", sa.String(_ID), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index("ix_unfollows_at", "unfollows", ["at"])
    op.create_index("ix_unfollows_follower", "unfollows", ["follower"])


def downgrade() -> None:
    op.drop_index("ix_unfollows_follower", table_name="unfollows")
    op.drop_index("ix_unfollows_at", table_name="unfollows")
    op.drop_table("unfollows")
