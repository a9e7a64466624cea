"""Checks of what each connector sends against its vendor's own published description.

The fakes in ``fakes/`` are ours: they encode our reading of a vendor's documentation, so
a misreading would pass both the connector and its fake. The files under
``tests/fixtures/vendor-specs/`` are the vendors' (see the README there for where each
came from) and judge the same requests independently.

Every connector registered under ``baton.connectors`` must have a module
``specs/<type>.py`` (``-`` becomes ``_``); ``test_vendor_specs.py`` fails for one without.
The module provides:

``check(seen: fakes.Seen) -> list[str]``
    The problems with one request the connector sent, as the vendor's description sees
    them (an empty list when it conforms): body against the operation's request schema
    (``openapi-core`` for OpenAPI/Swagger files, ``jsonschema`` for JSON Schemas, the
    vendor's SDK models where it publishes its limits there), plus the documented limits
    the machine-readable file leaves out, each citing where the vendor states it. Where a
    vendor publishes no machine-readable description (Redmine, ServiceNow, SMTP, our own
    webhook), check against the nearest authoritative text (its REST reference, the RFC,
    ``schemas/incident.schema.json``) and say so in the module docstring.
"""

from __future__ import annotations

from pathlib import Path

VENDOR_SPECS = Path(__file__).resolve().parents[2] / "fixtures" / "vendor-specs"
