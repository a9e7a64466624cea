"""Baton: a self-hosted incident escalation gateway."""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"
