"""event keys per organization; member names per membership

Usage events are keyed on (organization_id, id): request ids are unique only within one
organization's source. A member's display name moves from users to memberships, so a name
set in one organization is never shown in another's reports; each membership starts with
the name its user had.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _primary_key_name() -> str | None:
    return sa.inspect(op.get_bind()).get_pk_constraint("usage_events").get("name")


def upgrade() -> None:
    # the new primary key; SQLite copies the table (batch mode), PostgreSQL alters it
    with op.batch_alter_table("usage_events", recreate="auto") as batch:
        name = _primary_key_name()
        if name:
            batch.drop_constraint(name, type_="primary")
        batch.create_primary_key("pk_usage_events", ["organization_id", "id"])

    op.add_column("memberships", sa.Column("name", sa.String(300), nullable=True))
    op.execute("UPDATE memberships SET name = "
               "(SELECT users.name FROM users WHERE users.id = memberships.user_id)")
    # SQLite 3.35+ drops a plain column in place: users is referenced by other tables'
    # foreign keys, so it must not be copied and dropped the way batch mode would
    op.drop_column("users", "name")


def downgrade() -> None:
    op.add_column("users", sa.Column("name", sa.String(300), nullable=True))
    op.execute("UPDATE users SET name = (SELECT MIN(memberships.name) FROM memberships "
               "WHERE memberships.user_id = users.id)")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("name")
    # fails if two organizations hold the same request id: those rows cannot share a key
    with op.batch_alter_table("usage_events", recreate="auto") as batch:
        name = _primary_key_name()
        if name:
            batch.drop_constraint(name, type_="primary")
        batch.create_primary_key("pk_usage_events", ["id"])
