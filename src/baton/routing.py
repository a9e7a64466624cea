"""The route tree: which routes an alert ends at, and the key that groups it into an incident.

Semantics are Alertmanager's, so a tree copied from an Alertmanager config routes the same:
the configured list is the children of an implicit root that matches everything; children
are tried in order; a matching route descends into its own children, and the first
matching child ends the search among its siblings unless that child has ``continue: true``.
When no child of a matching route matches, the route itself is the result. The implicit
root is never a result: an alert no top-level route matches is unrouted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import Route
from .matcher import matches_all, quote

ALL_LABELS = "..."


@dataclass(frozen=True)
class RouteMatch:
    """A route an alert ended at, with the settings it inherits resolved.

    ``policy`` and ``group_by`` come from the nearest route on the path (this one first)
    that sets them; ``policy`` None means no route on the path names one, so the incident is
    recorded but nobody is notified. ``group_by`` empty, or ``("...",)``, means one incident
    per alert. Time intervals are the route's own; like Alertmanager, they are not inherited.
    """

    name: str
    policy: str | None
    group_by: tuple[str, ...]
    route: Route
    path: tuple[str, ...]  # names from the top-level route down to this one

    @property
    def per_alert(self) -> bool:
        return not self.group_by or self.group_by == (ALL_LABELS,)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    def match(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The routes ``labels`` end at, in tree order; empty means unrouted."""
        return self._children(self.routes, labels, None, (), ())

    def _children(self, routes: Sequence[Route], labels: Mapping[str, str],
                  policy: str | None, group_by: tuple[str, ...], path: tuple[str, ...]
                  ) -> list[RouteMatch]:
        found: list[RouteMatch] = []
        for route in routes:
            matched = self._visit(route, labels, policy, group_by, path)
            found.extend(matched)
            if matched and not route.continue_:
                break
        return found

    def _visit(self, route: Route, labels: Mapping[str, str], policy: str | None,
               group_by: tuple[str, ...], path: tuple[str, ...]) -> list[RouteMatch]:
        if not matches_all(route.matchers, labels):
            return []
        policy = route.policy if route.policy is not None else policy
        group_by = route.group_by or group_by
        path = (*path, route.name)
        below = self._children(route.routes, labels, policy, group_by, path)
        return below or [RouteMatch(route.name, policy, group_by, route, path)]


def group_key(match: RouteMatch | None, alert_labels: Mapping[str, str], dedup_key: str) -> str:
    """The incident key an alert belongs to.

    - unrouted (``match`` None): the dedup key itself;
    - per alert (no ``group_by``, or ``["..."]``): ``<route>|<dedup key>``;
    - grouped: ``<route>|{a="x",b="y"}``, the ``group_by`` labels sorted by name with
      their values quoted as in matchers (a missing label counts as ""), so values holding
      commas or quotes cannot make two groups collide.

    The route name is part of the key, so an alert matched by two routes (``continue``)
    opens one incident per route, as Alertmanager sends one notification per route.
    """
    if match is None:
        return dedup_key
    if match.per_alert:
        return f"{match.name}|{dedup_key}"
    pairs = ",".join(f"{name}={quote(alert_labels.get(name, ''))}"
                     for name in sorted(set(match.group_by)))
    return f"{match.name}|{{{pairs}}}"

