"""Alembic migrations of the store's schema (env.py, versions/0001...).

May import: reporter.store.schema (the MetaData autogenerate compares against).
"""
