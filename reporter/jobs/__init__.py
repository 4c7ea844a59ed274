"""Jobs: jobs.yaml settings and their loader, units of work, planning, the run ledger and
running a unit once (claim, build, render, store, send).

May import: the foundation modules, store, report, render and deliver.
"""
