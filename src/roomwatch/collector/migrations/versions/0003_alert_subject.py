"""alert subject, tier, notified_at, acknowledged_by; delivery attempts

A subject (a checkpoint occurrence, a sensor) makes each its own alert; tier and
notified_at carry escalation across a restart.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("tier", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
        batch.alter_column("alert_id", type_=sa.String(length=256), existing_nullable=False)
    with op.batch_alter_table("alert_transition") as batch:
        batch.alter_column("alert_id", type_=sa.String(length=256), existing_nullable=False)
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempt_alert", "delivery_attempt", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempt_alert", "delivery_attempt")
    op.drop_table("delivery_attempt")
    with op.batch_alter_table("alert_transition") as batch:
        batch.alter_column("alert_id", type_=sa.String(length=200), existing_nullable=False)
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("notified_at")
        batch.drop_column("tier")
        batch.drop_column("subject")
        batch.alter_column("alert_id", type_=sa.String(length=200), existing_nullable=False)
