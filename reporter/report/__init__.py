"""Reports: aggregation in the database (GROUP BY) into the report model every format reads.

May import: the foundation modules (errors, money, periods, fsutil) and reporter.store.
"""
