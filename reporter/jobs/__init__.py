"""Jobs: the run path. ``run`` runs a job (sync what it reads, plan, run, outcomes);
``plan`` asks the job's kind for its units (``kinds``: one module per kind); ``runner``
claims each unit in the ``ledger`` and hands what it delivers to ``deliveries`` (store,
webhook, email, each recorded on its own); ``units`` names units and their outcomes.

May import: the foundation modules, store, report, alerts, render, deliver and config.
"""
