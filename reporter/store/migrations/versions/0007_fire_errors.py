"""scheduler fires: why a fire failed, how often, and the organizations it covers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the error, failure count, organizations and catch-up flag of each fire."""
    with op.batch_alter_table("scheduler_fires") as batch:
        batch.add_column(sa.Column("error", sa.Text, nullable=True))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("orgs", sa.Text, nullable=True))
        batch.add_column(sa.Column("once", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("scheduler_fires") as batch:
        batch.drop_column("once")
        batch.drop_column("orgs")
        batch.drop_column("failures")
        batch.drop_column("error")
