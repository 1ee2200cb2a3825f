"""compliance: episode verdicts and scheduled report deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "episode_verdict",
        sa.Column("episode_id", sa.String(length=160), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episode.episode_id"], name="fk_episode_verdict_episode"
        ),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    op.create_index("ix_episode_verdict_outcome", "episode_verdict", ["outcome"])
    op.create_table(
        "report_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("chain_head", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind", "scope", "period_start", "period_end", name="uq_report_delivery"
        ),
    )


def downgrade() -> None:
    op.drop_table("report_delivery")
    op.drop_index("ix_episode_verdict_outcome", table_name="episode_verdict")
    op.drop_table("episode_verdict")
