"""Delivery: store reports on disk (the archive) and send them by email (SMTP or an outbox
folder).

May import: the foundation modules, report and render.
"""
