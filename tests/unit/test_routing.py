from baton.config import Route
from baton.matcher import parse_matchers
from baton.routing import RouteMatch, Router, group_key


def route(name: str, matchers: str = "", policy: str | None = None, *,
          cont: bool = False, group_by: tuple[str, ...] = (),
          routes: tuple[Route, ...] = ()) -> Route:
    return Route(name=name, matchers=tuple(parse_matchers(matchers)), policy=policy,
                 continue_=cont, group_by=group_by, routes=routes)


def names(router: Router, **labels: str) -> list[str]:
    return [m.name for m in router.match(labels)]


def test_first_match_wins() -> None:
    router = Router([
        route("crit", 'severity="critical"', "page"),
        route("db", 'service="db"', "db"),
        route("all", "", "ticket"),
    ])
    assert names(router, severity="critical", service="db") == ["crit"]
    assert names(router, severity="warning", service="db") == ["db"]
    assert names(router, severity="info") == ["all"]


def test_continue_tries_later_siblings() -> None:
    router = Router([
        route("audit", "", "audit", cont=True),
        route("crit", 'severity="critical"', "page", cont=True),
        route("db", 'service="db"', "db"),
        route("all", "", "ticket"),
    ])
    assert names(router, severity="critical", service="db") == ["audit", "crit", "db"]
    assert names(router, severity="critical") == ["audit", "crit", "all"]
    assert names(router, service="web") == ["audit", "all"]


def test_continue_on_a_non_matching_route_changes_nothing() -> None:
    router = Router([route("a", 'x="1"', "p", cont=True), route("b", "", "q"),
                     route("c", "", "r")])
    assert names(router, x="2") == ["b"]


def test_unrouted_without_catch_all() -> None:
    router = Router([route("crit", 'severity="critical"', "page")])
    assert router.match({"severity": "warning"}) == []
    assert Router([]).match({"a": "b"}) == []


def test_nested_first_matching_child_and_fallback_to_parent() -> None:
    router = Router([
        route("db", 'service="db"', "db-team", group_by=("alertname",), routes=(
            route("db-crit", 'severity="critical"', "db-page"),
            route("db-prod", 'env="prod"'),
        )),
        route("rest", "", "ticket"),
    ])
    crit = router.match({"service": "db", "severity": "critical", "env": "prod"})
    assert [(m.name, m.policy, m.group_by) for m in crit] == [
        ("db-crit", "db-page", ("alertname",))]
    prod = router.match({"service": "db", "env": "prod"})
    assert [(m.name, m.policy, m.group_by) for m in prod] == [
        ("db-prod", "db-team", ("alertname",))]
    # No child matches: the parent itself is the result.
    dev = router.match({"service": "db", "env": "dev"})
    assert [(m.name, m.policy, m.path) for m in dev] == [("db", "db-team", ("db",))]
    # A matching subtree ends the search: "rest" is not tried.
    assert names(router, service="db") == ["db"]
    assert names(router, service="web") == ["rest"]


def test_inheritance_over_several_levels_and_overrides() -> None:
    leaf = route("leaf", 'c="1"', group_by=("c",))
    mid = route("mid", 'b="1"', routes=(leaf,))
    top = route("top", 'a="1"', "top-policy", group_by=("a", "b"), routes=(mid,))
    router = Router([top])
    (match,) = router.match({"a": "1", "b": "1", "c": "1"})
    assert match == RouteMatch("leaf", "top-policy", ("c",), leaf, ("top", "mid", "leaf"))
    (match,) = router.match({"a": "1", "b": "1"})
    assert (match.name, match.policy, match.group_by) == ("mid", "top-policy", ("a", "b"))


def test_route_without_any_policy_is_a_match_with_none() -> None:
    router = Router([route("drop-dev", 'env="dev"'), route("all", "", "ticket")])
    (match,) = router.match({"env": "dev"})
    assert (match.name, match.policy) == ("drop-dev", None)


def test_continue_inside_a_subtree() -> None:
    router = Router([
        route("team", 'team="ops"', "ops", routes=(
            route("chat", "", "chat", cont=True),
            route("crit", 'severity="critical"', "page"),
        )),
    ])
    assert names(router, team="ops", severity="critical") == ["chat", "crit"]
    assert names(router, team="ops", severity="info") == ["chat"]


def test_missing_label_matches_empty_value() -> None:
    router = Router([route("no-team", 'team=""', "triage"), route("all", "", "ticket")])
    assert names(router, service="x") == ["no-team"]
    assert names(router, team="ops") == ["all"]


def test_group_key_forms() -> None:
    labels = {"alertname": "DiskFull", "service": "db", "instance": "a:9100"}
    grouped = Router([route("db", "", "p", group_by=("service", "alertname"))]).match(labels)[0]
    assert group_key(grouped, labels, "fp1") == 'db|{alertname="DiskFull",service="db"}'
    # Other labels and the dedup key do not matter once grouped.
    assert group_key(grouped, {**labels, "instance": "b"}, "fp2") == group_key(
        grouped, labels, "fp1")
    per_alert = Router([route("all", "", "p")]).match(labels)[0]
    assert group_key(per_alert, labels, "fp1") == "all|fp1"
    everything = Router([route("all", "", "p", group_by=("...",))]).match(labels)[0]
    assert everything.per_alert
    assert group_key(everything, labels, "fp1") == "all|fp1"
    assert group_key(None, labels, "fp1") == "fp1"


def test_group_key_missing_labels_and_quoting() -> None:
    match = Router([route("r", "", "p", group_by=("b", "a"))]).match({})[0]
    assert group_key(match, {}, "k") == 'r|{a="",b=""}'
    assert group_key(match, {"a": 'x",b="y'}, "k") == 'r|{a="x\\",b=\\"y",b=""}'
    assert group_key(match, {"a": 'x",b="y'}, "k") != group_key(match, {"a": "x", "b": "y"}, "k")
