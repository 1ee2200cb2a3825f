"""derived tables: sites, rooms, agents, episodes, telemetry, events; web-app users

Written from the messages by Store.write_batch, in the message rows' transaction
(docs/storage.md). They start empty: messages stored before this revision are
not replayed into them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "site",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "room",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=60), nullable=True),
        sa.Column("student_band", sa.String(length=40), nullable=True),
        _utc("first_seen"),
        _utc("last_seen"),
        sa.ForeignKeyConstraint(["site"], ["site.id"], name="fk_room_site"),
        sa.PrimaryKeyConstraint("site", "room"),
    )
    op.create_table(
        "agent",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=True),
        sa.Column("agent_version", sa.String(length=40), nullable=True),
        sa.Column("config_digest", sa.String(length=80), nullable=True),
        sa.Column("profile", sa.String(length=60), nullable=True),
        sa.Column("acked_seq", sa.BigInteger(), nullable=True),
        _utc("last_status_at", nullable=True),
        _utc("last_heard_at"),
        sa.CheckConstraint("state in ('online', 'offline')", name="ck_agent_state"),
        sa.ForeignKeyConstraint(["site", "room"], ["room.site", "room.room"], name="fk_agent_room"),
        sa.PrimaryKeyConstraint("site", "room"),
    )
    op.create_table(
        "episode",
        sa.Column("episode_id", sa.String(length=160), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        _utc("started_at"),
        _utc("ended_at", nullable=True),
        sa.Column("start_reason", sa.String(length=200), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("checkpoint_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site", "room"], ["room.site", "room.room"], name="fk_episode_room"
        ),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    op.create_index("ix_episode_room_started", "episode", ["site", "room", "started_at"])
    op.create_table(
        "telemetry",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        _utc("ts"),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("lux", sa.Float(), nullable=True),
        sa.Column("co2_ppm", sa.Float(), nullable=True),
        sa.Column("occupied", sa.Boolean(), nullable=True),
        sa.Column("door_closed", sa.Boolean(), nullable=True),
        sa.Column("door_locked", sa.Boolean(), nullable=True),
        sa.Column("staff_present", sa.Boolean(), nullable=True),
        sa.Column("lock_permit", sa.Boolean(), nullable=False),
        sa.Column("episode_id", sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_telemetry_room_ts", "telemetry", ["site", "room", "ts"])
    op.create_table(
        "event",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        _utc("ts"),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=160), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_event_room_ts", "event", ["site", "room", "ts"])
    op.create_table(
        "app_user",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=500), nullable=True),
        _utc("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("role in ('staff', 'admin', 'auditor')", name="ck_app_user_role"),
        sa.UniqueConstraint("username", name="uq_app_user_username"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("app_user")
    op.drop_index("ix_event_room_ts", "event")
    op.drop_table("event")
    op.drop_index("ix_telemetry_room_ts", "telemetry")
    op.drop_table("telemetry")
    op.drop_index("ix_episode_room_started", "episode")
    op.drop_table("episode")
    op.drop_table("agent")
    op.drop_table("room")
    op.drop_table("site")
