"""alert subject: a checkpoint occurrence or a sensor, so each is an alert of its own

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
        batch.alter_column("alert_id", type_=sa.String(length=256), existing_nullable=False)
    with op.batch_alter_table("alert_transition") as batch:
        batch.alter_column("alert_id", type_=sa.String(length=256), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_transition") as batch:
        batch.alter_column("alert_id", type_=sa.String(length=200), existing_nullable=False)
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("subject")
        batch.alter_column("alert_id", type_=sa.String(length=200), existing_nullable=False)
