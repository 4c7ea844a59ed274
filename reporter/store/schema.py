"""Every table, on one MetaData: organizations, members, usage events, the run ledger and
the scheduler's fire table and lease."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

from reporter import addresses

ROLES = ("owner", "admin", "member")

#: column sizes that ingest and the store check before the database sees a value
SLUG_LENGTH = 200
NAME_LENGTH = 300
EMAIL_LENGTH = addresses.MAX_LENGTH
EVENT_ID_LENGTH = 255
TIMEZONE_LENGTH = 64

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: the one MetaData of every table, with the constraint naming convention
metadata = MetaData(naming_convention=NAMING)

#: an organization: its slug, display name and IANA timezone
organizations = Table(
    "organizations", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(SLUG_LENGTH), nullable=False, unique=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("timezone", String(TIMEZONE_LENGTH), nullable=False, default="UTC"),
    #: the monthly budget in nano-dollars (exact); None: no budget
    Column("monthly_budget_nanos", BigInteger, nullable=True),
)

#: a person, by email address; names and roles belong to their memberships
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(EMAIL_LENGTH), nullable=False, unique=True),
)

#: a user in an organization: the role and the display name that organization uses
memberships = Table(
    "memberships", metadata,
    Column("organization_id", Integer, ForeignKey("organizations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False, default="member"),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    Column("name", String(NAME_LENGTH), nullable=True),
    #: this member's monthly budget in nano-dollars (exact); None: no budget
    Column("monthly_budget_nanos", BigInteger, nullable=True),
)

#: one API request. ``id`` is the provider's request id, unique within its organization;
#: ``ts_us`` is microseconds since the Unix epoch, UTC; ``cost_nanos`` is the cost in
#: nano-dollars (1e-9 USD), exact
usage_events = Table(
    "usage_events", metadata,
    Column("id", String(EVENT_ID_LENGTH), nullable=False),
    Column("organization_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("model", Text, nullable=False),
    Column("project", Text, nullable=True),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_tokens", BigInteger, nullable=False, default=0),
    Column("cost_nanos", BigInteger, nullable=False),
    PrimaryKeyConstraint("organization_id", "id"),
    Index("ix_usage_events_org_ts", "organization_id", "ts_us"),
    Index("ix_usage_events_org_user_ts", "organization_id", "user_id", "ts_us"),
)


# -- the run ledger, the scheduler's fire table and its lease ------------------------------

class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in UTC on every database (SQLite keeps them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """UTC on the way in (naive UTC for SQLite)."""
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None,
                             dialect: Dialect) -> datetime | None:
        """An aware UTC datetime on the way out."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(200), nullable=False),
    Column("organization", String(200), nullable=False),
    Column("audience", String(400), nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("period_name", String(40), nullable=False),
    Column("state", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("forced", Integer, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("seconds", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("files", Text, nullable=True),
    Column("recipients", Text, nullable=True),
    Column("timings", Text, nullable=True),
    UniqueConstraint("job", "organization", "audience", "first_day", "last_day",
                     name="uq_runs_unit"),
    Index("ix_runs_state", "state"),
    Index("ix_runs_job_org", "job", "organization"),
)

fires = Table(
    "scheduler_fires", metadata,
    Column("trigger_id", String(300), primary_key=True),
    Column("job", String(200), nullable=False),
    Column("schedule", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("last_fire", UTCDateTime, nullable=False),
    Column("finished", Boolean, nullable=False),
    Column("retry_at", UTCDateTime, nullable=True),
    #: why the last fire failed or was missed (None when it ran or is running)
    Column("error", Text, nullable=True),
    #: how often in a row the last fire failed to start or finish (the retry backoff)
    Column("failures", Integer, nullable=False, server_default="0"),
    #: the organizations the trigger covered at its last fire (JSON), for a timezone change
    Column("orgs", Text, nullable=True),
    #: a one-off catch-up of one fire for organizations that moved to this timezone
    Column("once", Boolean, nullable=False, server_default=false()),
)
leases = Table(
    "scheduler_leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# -- sources: how far each configured source was read (reporter.store.sources) -----------

source_watermarks = Table(
    "source_watermarks", metadata,
    Column("name", String(200), primary_key=True),
    Column("last_ts", UTCDateTime, nullable=False),
    Column("last_id", Text, nullable=False),  # whatever id the source has, any length
    Column("updated_at", UTCDateTime, nullable=False),
)

#: each organization id of a source bound to the slug it was first stored under, so a
#: later rename in the source changes only the display name
source_organizations = Table(
    "source_organizations", metadata,
    Column("source", String(200), primary_key=True),
    Column("source_id", Text, primary_key=True),
    Column("slug", String(SLUG_LENGTH), nullable=False, index=True),
    Column("bound_at", UTCDateTime, nullable=False),
)


__all__ = ["EMAIL_LENGTH", "EVENT_ID_LENGTH", "NAME_LENGTH", "ROLES", "SLUG_LENGTH",
           "TIMEZONE_LENGTH", "UTCDateTime", "fires", "leases", "memberships", "metadata",
           "organizations", "runs", "source_organizations", "source_watermarks", "usage_events",
           "users"]
