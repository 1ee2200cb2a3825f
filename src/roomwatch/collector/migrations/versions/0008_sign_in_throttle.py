"""sign-in throttle: failed sign-ins per user and address, and their locks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=True),
        sa.Column("address", sa.String(length=100), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_sign_in_throttle_username", "sign_in_throttle", ["username"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_throttle_username", table_name="sign_in_throttle")
    op.drop_table("sign_in_throttle")
