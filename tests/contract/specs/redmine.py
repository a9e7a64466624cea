"""Redmine, checked against its REST API documentation (no machine-readable one exists).

Redmine publishes no OpenAPI or JSON Schema. The nearest authoritative texts:

* the REST API pages (redmine.org/projects/redmine/wiki/Rest_api, Rest_Issues,
  Rest_Trackers, Rest_IssueStatuses, Rest_Enumerations, Rest_Users): the endpoints, that a
  body is ``{"issue": {...}}`` as JSON (``Content-Type: application/json``), authentication
  by ``X-Redmine-API-Key`` (or basic auth), the attributes an issue create / update takes
  (``notes`` and ``private_notes`` on update only);
* Redmine's Issue model (app/models/issue.rb), which the docs defer to for validation:
  ``subject`` and ``project`` required on create, ``subject`` at most 255 characters
  (``validates_length_of :subject, :maximum => 255``; Ruby counts characters, i.e. code
  points). The subject is a one-line text field (``<input type="text">`` in Redmine's own
  form, shown on one line in every list): a line break is refused here.
"""

from __future__ import annotations

import re

from fakes import Seen

from ._openapi import json_request

SUBJECT_CHARS = 255
CREATE = {"project_id", "tracker_id", "status_id", "priority_id", "subject", "description",
          "category_id", "fixed_version_id", "assigned_to_id", "parent_issue_id",
          "custom_fields", "watcher_user_ids", "is_private", "estimated_hours",
          "start_date", "due_date", "done_ratio", "uploads"}
UPDATE = (CREATE - {"watcher_user_ids"}) | {"notes", "private_notes"}
READS = re.compile(r"^/(issues(/\d+)?|trackers|issue_statuses|enumerations/issue_priorities"
                   r"|users/current)\.json$")
ISSUE = re.compile(r"^/issues/\d+\.json$")


def _issue_problems(issue: object, allowed: set[str], create: bool) -> list[str]:
    if not isinstance(issue, dict):
        return ['the body must be {"issue": {...}}']
    out = [f"issue.{k} is not an attribute the API takes here" for k in issue
           if k not in allowed]
    if create:
        out += [f"issue.{k} is required" for k in ("project_id", "subject")
                if not issue.get(k)]
    if "subject" in issue:
        subject = str(issue["subject"])
        if len(subject) > SUBJECT_CHARS:
            out.append(f"subject is {len(subject)} characters; Redmine allows 255")
        if "\n" in subject or "\r" in subject:
            out.append("subject has a line break; it is a one-line field")
        if not subject.strip():
            out.append("subject is blank")
    for key in ("description", "notes"):
        if key in issue and not isinstance(issue[key], str):
            out.append(f"issue.{key} must be text")
    return out


def check(seen: Seen) -> list[str]:
    headers = {k.lower(): v for k, v in seen.headers.items()}
    out = []
    if not headers.get("x-redmine-api-key") and not headers.get("authorization"):
        out.append("no X-Redmine-API-Key (or basic auth)")
    if seen.method == "GET":
        if not READS.match(seen.path):
            out.append(f"GET {seen.path} is not a documented endpoint")
        return out
    doc, problems = json_request(seen)
    out += problems
    if doc is None:
        return out
    if seen.method == "POST" and seen.path == "/issues.json":
        out += _issue_problems(doc.get("issue"), CREATE, create=True)
    elif seen.method == "PUT" and ISSUE.match(seen.path):
        out += _issue_problems(doc.get("issue"), UPDATE, create=False)
    else:
        out.append(f"{seen.method} {seen.path} is not a documented endpoint")
    return out
