"""Delivery: store reports on disk (the archive) and send them by email (SMTP or an outbox
folder).

The email is assembled from parts already rendered (``reporter.render.email_body``).

May import: the foundation modules and report (never render).
"""
