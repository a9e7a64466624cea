"""ServiceNow, checked against its Table API documentation (no machine-readable one exists).

ServiceNow publishes no OpenAPI for the Table API that a test can load (an instance's
REST API Explorer generates one per instance). The nearest authoritative texts:

* "Table API" (docs.servicenow.com, REST API reference > Table API): ``GET/POST
  /api/now/table/{tableName}``, ``GET/PATCH/PUT/DELETE /api/now/table/{tableName}/{sys_id}``;
  JSON bodies (``Content-Type: application/json``); the ``sysparm_*`` query parameters each
  method takes;
* the ``incident`` table's out-of-box dictionary (Task/Incident field reference):
  ``short_description`` String(160), ``description`` String(4000), ``correlation_id`` and
  ``correlation_display`` String(100), ``close_notes`` String(4000), ``work_notes``
  journal input (4000 per entry); ``state`` 1-8 (6 Resolved), ``urgency``/``impact`` 1-3.
  Lengths are counted in characters. ``short_description`` is the one-line summary every
  list shows: a line break is refused here.
"""

from __future__ import annotations

import re

from fakes import Seen

from ._openapi import json_request

TABLE = "/api/now/table/incident"
LENGTHS = {"short_description": 160, "description": 4000, "correlation_id": 100,
           "correlation_display": 100, "close_notes": 4000, "work_notes": 4000,
           "comments": 4000, "close_code": 40, "caller_id": 32, "assignment_group": 32,
           "category": 40}
CHOICES = {"state": {str(n) for n in range(1, 9)}, "urgency": {"1", "2", "3"},
           "impact": {"1", "2", "3"}}
QUERY = {"GET": {"sysparm_query", "sysparm_display_value", "sysparm_exclude_reference_link",
                 "sysparm_suppress_pagination_header", "sysparm_fields", "sysparm_limit",
                 "sysparm_view", "sysparm_query_category", "sysparm_query_no_domain",
                 "sysparm_no_count", "sysparm_offset"},
         "POST": {"sysparm_display_value", "sysparm_exclude_reference_link", "sysparm_fields",
                  "sysparm_input_display_value", "sysparm_suppress_auto_sys_field",
                  "sysparm_view"},
         "PATCH": {"sysparm_display_value", "sysparm_exclude_reference_link",
                   "sysparm_fields", "sysparm_input_display_value",
                   "sysparm_suppress_auto_sys_field", "sysparm_view",
                   "sysparm_query_no_domain"}}
_RECORD = re.compile(rf"^{TABLE}/[0-9a-f]{{32}}$")


def check(seen: Seen) -> list[str]:
    headers = {k.lower(): v for k, v in seen.headers.items()}
    out = []
    if not headers.get("authorization"):
        out.append("no Authorization (basic or bearer)")
    if seen.path != TABLE and not _RECORD.match(seen.path):
        out.append(f"{seen.path} is not the incident table or one of its records")
    allowed = QUERY.get(seen.method)
    if allowed is None:
        return [*out, f"{seen.method} is not used here"]
    out += [f"query parameter {k!r} is not one {seen.method} takes" for k in seen.query
            if k not in allowed]
    if seen.method == "GET":
        return out
    if (seen.method == "POST") != (seen.path == TABLE):
        out.append(f"{seen.method} goes to {'the table' if seen.method == 'POST' else 'a record'}")
    doc, problems = json_request(seen)
    out += problems
    if doc is None:
        return out
    for field, value in doc.items():
        text = str(value)
        if field in LENGTHS and len(text) > LENGTHS[field]:
            out.append(f"{field} is {len(text)} characters; the column holds "
                       f"{LENGTHS[field]}")
        if field in CHOICES and text not in CHOICES[field]:
            out.append(f"{field}={text!r} is not one of the field's choices")
    short = str(doc.get("short_description", ""))
    if "\n" in short or "\r" in short:
        out.append("short_description has a line break; it is the one-line summary")
    return out
