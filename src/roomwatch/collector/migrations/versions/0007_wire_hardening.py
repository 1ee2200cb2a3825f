"""wire hardening: flagged claimed times, bounded dead letters

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

``message.clock_skew_s``: how far a message's claimed time lay outside the collector's window
(null: inside it, believed). ``dead_letter``: the payload is now a prefix, with the whole
payload's size and SHA-256, and the room it came from (for the per-room cap). Rows stored
before keep their whole payload; their size is filled in, their hash left null.

Plain ADD COLUMN (nullable), not a batch copy: the message table can be large.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("message", sa.Column("clock_skew_s", sa.Float(), nullable=True))
    op.add_column("dead_letter", sa.Column("payload_size", sa.BigInteger(), nullable=True))
    op.add_column("dead_letter", sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    op.add_column("dead_letter", sa.Column("source", sa.String(length=130), nullable=True))
    op.execute("UPDATE dead_letter SET payload_size = length(payload)")
    op.create_index("ix_dead_letter_source", "dead_letter", ["source"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_source", table_name="dead_letter")
    with op.batch_alter_table("dead_letter") as batch:
        batch.drop_column("source")
        batch.drop_column("payload_sha256")
        batch.drop_column("payload_size")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("clock_skew_s")
