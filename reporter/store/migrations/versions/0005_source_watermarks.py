"""source watermarks: how far each configured source was read

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_watermarks",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_id", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_watermarks")
