"""The one exception family: every error a user can cause is a ReporterError."""


class ReporterError(Exception):
    """A problem the user can fix; its message is one line naming what and where."""


class ConfigError(ReporterError):
    """The configuration (jobs.yaml, a flag, a setting) is wrong."""


class PeriodError(ReporterError):
    """A period name or date range cannot be resolved."""


class IngestError(ReporterError):
    """A usage file cannot be read or held rejected rows. ``result``: what was stored before
    the failure, when some was (an ``IngestResult``)."""

    result: object = None


class StoreError(ReporterError):
    """The database holds nothing for what was asked (unknown organization, member...)."""


class RenderError(ReporterError):
    """A report cannot be rendered in the asked format."""


class DeliveryError(ReporterError):
    """A report could not be delivered (SMTP, storage)."""
