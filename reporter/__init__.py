"""reporter: scheduled usage reports for AI gateway usage data."""

__version__ = "0.1.0"
