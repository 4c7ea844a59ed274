"""The long-running service: cron triggers and the fire table, the leader lease, the
scheduler loop, and the executors (serial, the local process pool, Celery workers).

May import: the foundation modules, store, report, render, deliver and jobs.
"""
