"""monthly budgets: exact nano-dollars on organizations and memberships

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable budget columns (NULL: no budget)."""
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("monthly_budget_nanos", sa.BigInteger, nullable=True))
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("monthly_budget_nanos", sa.BigInteger, nullable=True))


def downgrade() -> None:
    """Drop the budget columns."""
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("monthly_budget_nanos")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("monthly_budget_nanos")
