"""written by people: incident records, the hash-chained audit trail, sessions, API tokens,
Web Push subscriptions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "incident_record",
        _text("episode_id", 160),
        sa.Column("student_ref", sa.String(length=40), nullable=True),
        _text("precipitating_factors", 4000),
        _text("initiated_by", 200),
        _text("supervised_by", 200),
        _text("removed_by", 200),
        _text("behavior_before", 4000),
        _text("behavior_during", 4000),
        _text("behavior_after", 4000),
        sa.Column("student_injury", sa.Boolean(), nullable=True),
        sa.Column("staff_injury", sa.Boolean(), nullable=True),
        _text("injury_details", 4000),
        _text("parent_notified_by", 200),
        _text("parent_notified_whom", 200),
        sa.Column("parent_notification_method", sa.String(length=20), nullable=True),
        _utc("parent_notified_at", nullable=True),
        _text("notes", 4000),
        sa.Column("version", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        _text("updated_by", 64),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episode.episode_id"], name="fk_incident_record_episode"
        ),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    op.create_index("ix_incident_record_student", "incident_record", ["student_ref"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _utc("at"),
        _text("actor", 64),
        _text("action", 64),
        _text("subject", 300),
        sa.Column("detail", sa.JSON(), nullable=False),
        _text("prev_hash", 64),
        _text("hash", 64),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "web_session",
        _text("token_hash", 64),
        _text("user_id", 64),
        _text("csrf_token", 64),
        _utc("created_at"),
        _utc("expires_at"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_web_session_user"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_session_user_id", "web_session", ["user_id"])
    op.create_table(
        "api_token",
        _text("id", 32),
        _text("user_id", 64),
        _text("name", 100),
        _text("token_hash", 64),
        _utc("created_at"),
        _utc("last_used_at", nullable=True),
        _utc("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_api_token_user"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_hash"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "push_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("user_id", 64),
        _text("endpoint", 1000),
        _text("p256dh", 200),
        _text("auth", 100),
        _utc("created_at"),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_push_subscription_user"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endpoint", name="uq_push_subscription_endpoint"),
    )
    op.create_index("ix_push_subscription_user_id", "push_subscription", ["user_id"])


def downgrade() -> None:
    op.drop_table("push_subscription")
    op.drop_table("api_token")
    op.drop_table("web_session")
    op.drop_table("audit_log")
    op.drop_table("incident_record")
