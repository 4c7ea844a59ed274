"""Delivery: store reports on disk and send them by email (SMTP or an outbox folder)."""
