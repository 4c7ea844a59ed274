"""Alerts: the rules that decide when a budget threshold or a spike of spend holds, and the
words of each alert (``rules``). Delivering them is the alert job kind's
(reporter.jobs.kinds.alert).

May import: the foundation modules, store and report.
"""
