"""source organizations: each source id bound to its slug; watermark ids of any length

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the bindings table and widen the watermark's id to text."""
    op.create_table(
        "source_organizations",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id", name="pk_source_organizations"),
    )
    op.create_index("ix_source_organizations_slug", "source_organizations", ["slug"])
    with op.batch_alter_table("source_watermarks") as batch:
        batch.alter_column("last_id", type_=sa.Text, existing_type=sa.String(255),
                           existing_nullable=False)


def downgrade() -> None:
    """Drop the bindings table (watermark ids longer than 255 are cut)."""
    with op.batch_alter_table("source_watermarks") as batch:
        batch.alter_column("last_id", type_=sa.String(255), existing_type=sa.Text,
                           existing_nullable=False,
                           postgresql_using="left(last_id, 255)")
    op.drop_index("ix_source_organizations_slug", "source_organizations")
    op.drop_table("source_organizations")
