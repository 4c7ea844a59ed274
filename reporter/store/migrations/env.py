"""Alembic environment: runs on the connection handed in by reporter.store.db.upgrade."""

from alembic import context
from sqlalchemy import create_engine

from reporter.store.schema import metadata

config = context.config
# every table the migrations create, so that autogenerate compares against all of them
target_metadata = metadata
connection = config.attributes.get("connection")

if connection is None:  # command-line alembic: take the URL from the environment
    from reporter.store.db import normalize_url, resolve_url

    engine = create_engine(normalize_url(resolve_url(None)))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
