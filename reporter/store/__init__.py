"""The store: the database (engine, one schema, migrations), organizations and members,
ingest of usage events, demo data and the project-id rule.

May import: reporter.errors, reporter.money, reporter.periods, reporter.fsutil.
"""
