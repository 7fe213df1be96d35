"""Operations and privacy: exposures (served lists), experiments, consent switches, the
erasure log, and model lineage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = 256
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exposures",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(_ID), nullable=False),
        sa.Column("user_id", sa.String(_ID), nullable=False),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(_ID), nullable=True),
        sa.Column("experiment", sa.String(_ID), nullable=True),
        sa.Column("variant", sa.String(_ID), nullable=True),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index("ix_exposures_user_at", "exposures", ["user_id", "at"])
    op.create_index("ix_exposures_experiment_at", "exposures", ["experiment", "at"])
    op.create_index("ix_exposures_at", "exposures", ["at"])
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.String(_ID), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("stopped_at", sa.Double(), nullable=True),
    )
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(_ID), primary_key=True),
        sa.Column("personalization", sa.Boolean(), nullable=False),
        sa.Column("activity_for_others", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "erasures",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index("ix_erasures_subject", "erasures", ["subject"])
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("lineage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("lineage")
    op.drop_index("ix_erasures_subject", table_name="erasures")
    op.drop_table("erasures")
    op.drop_table("consents")
    op.drop_table("experiments")
    op.drop_index("ix_exposures_at", table_name="exposures")
    op.drop_index("ix_exposures_experiment_at", table_name="exposures")
    op.drop_index("ix_exposures_user_at", table_name="exposures")
    op.drop_table("exposures")
