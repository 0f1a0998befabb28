"""Errors adapters raise; the Supervisor decides what each means for the device's status."""


class MonitorError(Exception):
    """Base class for everything a monitor adapter raises on purpose."""


class ConfigurationError(MonitorError):
    """The adapter cannot start as configured (bad port, unknown dialect); retrying will not help."""


class LinkError(MonitorError):
    """The link to the device failed (port vanished, socket closed); the Supervisor retries with backoff."""
