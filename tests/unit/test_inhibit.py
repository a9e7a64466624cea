"""Inhibition rules, with Alertmanager's semantics."""

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from helpers import minimal

from baton.config import config_from_dict
from baton.errors import ConfigError
from baton.inhibit import InhibitRule, inhibited_by, parse_inhibit_rules
from baton.matcher import Matcher, parse_matchers


def rule(source: str, target: str, *equal: str) -> InhibitRule:
    return InhibitRule(tuple(parse_matchers(source)), tuple(parse_matchers(target)), equal)


NODE_DOWN = rule('alertname="NodeDown", severity="critical"', 'severity="warning"', "instance")
DOWN_A = {"alertname": "NodeDown", "severity": "critical", "instance": "a"}
DISK_A = {"alertname": "DiskFull", "severity": "warning", "instance": "a"}
DISK_B = {"alertname": "DiskFull", "severity": "warning", "instance": "b"}


def test_node_down_mutes_the_warnings_of_its_node_only() -> None:
    assert NODE_DOWN.inhibits(DOWN_A, DISK_A)
    assert inhibited_by([NODE_DOWN], DISK_A, [DOWN_A]) == (0, DOWN_A)
    assert not NODE_DOWN.inhibits(DOWN_A, DISK_B)
    assert inhibited_by([NODE_DOWN], DISK_B, [DOWN_A]) is None
    # Not a target: a critical alert of the same node still notifies.
    cpu_critical = {"alertname": "CPU", "severity": "critical", "instance": "a"}
    assert inhibited_by([NODE_DOWN], cpu_critical, [DOWN_A]) is None
    # Not a source: a warning NodeDown inhibits nothing.
    assert inhibited_by([NODE_DOWN], DISK_A, [{**DOWN_A, "severity": "warning"}]) is None


def test_resolved_sources_do_not_inhibit() -> None:
    # The caller passes only the alerts firing now; once NodeDown resolves it is not among them.
    assert inhibited_by([NODE_DOWN], DISK_A, []) is None
    assert inhibited_by([NODE_DOWN], DISK_A, [DISK_B, DISK_A]) is None
    assert inhibited_by([NODE_DOWN], DISK_A, [DISK_B, DOWN_A]) == (0, DOWN_A)


@pytest.mark.parametrize(("source_extra", "target_extra", "inhibited"), [
    ({}, {}, True),  # missing on both sides: equal
    ({}, {"cluster": ""}, True),  # missing and empty are the same thing
    ({"cluster": ""}, {}, True),
    ({"cluster": "eu"}, {"cluster": "eu"}, True),
    ({"cluster": "eu"}, {}, False),
    ({}, {"cluster": "eu"}, False),
    ({"cluster": "eu"}, {"cluster": "us"}, False),
])
def test_equal_labels_missing_counts_as_empty(source_extra: dict[str, str],
                                              target_extra: dict[str, str],
                                              inhibited: bool) -> None:
    by_cluster = rule('alertname="ClusterDown"', 'severity="warning"', "cluster")
    source = {"alertname": "ClusterDown", **source_extra}
    target = {"alertname": "Slow", "severity": "warning", **target_extra}
    assert by_cluster.inhibits(source, target) is inhibited


def test_no_equal_labels_means_any_firing_source() -> None:
    everything = rule('alertname="DatacenterDown"', 'severity=~"warning|info"')
    dc_down = {"alertname": "DatacenterDown", "severity": "critical"}
    assert everything.inhibits(dc_down, DISK_B)
    assert not everything.inhibits(dc_down, {"alertname": "X", "severity": "critical"})


def test_an_alert_on_both_sides_does_not_inhibit_itself_or_its_likes() -> None:
    # Every critical ops alert mutes ops alerts: a critical ops alert is on both sides.
    ops = rule('severity="critical"', 'team="ops"')
    both = {"alertname": "A", "severity": "critical", "team": "ops"}
    both_too = {"alertname": "B", "severity": "critical", "team": "ops"}
    source_only = {"alertname": "C", "severity": "critical", "team": "db"}
    target_only = {"alertname": "D", "severity": "warning", "team": "ops"}
    assert not ops.inhibits(both, both)
    assert inhibited_by([ops], both, [both]) is None
    assert inhibited_by([ops], both, [both, both_too]) is None
    assert inhibited_by([ops], both, [both, source_only]) == (0, source_only)
    assert inhibited_by([ops], target_only, [target_only, both]) == (0, both)


def test_rules_in_order_and_sources_read_once() -> None:
    by_instance = rule('alertname="NodeDown"', 'severity="warning"', "instance")
    by_rack = rule('alertname="RackDown"', 'severity="warning"', "rack")
    target = {**DISK_A, "rack": "r1"}
    rack_down = {"alertname": "RackDown", "rack": "r1"}

    def firing() -> Iterator[Mapping[str, str]]:
        yield {"alertname": "NodeDown", "instance": "z"}
        yield rack_down

    # The first rule applies to the target but nothing fires for its instance; the generator
    # is read once and still offered to the second rule.
    assert inhibited_by([by_instance, by_rack], target, firing()) == (1, rack_down)
    node_down = {"alertname": "NodeDown", "instance": "a"}
    assert inhibited_by([by_rack, by_instance], target, [node_down, rack_down]) == (0, rack_down)
    assert inhibited_by([], target, [rack_down]) is None


def test_str() -> None:
    assert str(NODE_DOWN) == ('source {alertname="NodeDown", severity="critical"} '
                              'target {severity="warning"} equal [instance]')
    assert str(InhibitRule()) == "source {} target {}"


# --- config ----------------------------------------------------------------------------------



def test_config_builds_rules(tmp_path: Path) -> None:
    data = minimal(inhibit_rules=[
        {"source_matchers": ['alertname="NodeDown"', "severity=critical"],
         "target_matchers": ['{severity="warning", team=~"ops|db"}'], "equal": ["instance"]},
        {"source_matchers": ["alertname=Maintenance"]},
    ])
    config = config_from_dict(data, tmp_path, {})
    assert config.inhibit_rules == (
        InhibitRule((Matcher("alertname", "=", "NodeDown"), Matcher("severity", "=", "critical")),
                    (Matcher("severity", "=", "warning"), Matcher("team", "=~", "ops|db")),
                    ("instance",)),
        InhibitRule((Matcher("alertname", "=", "Maintenance"),)),
    )
    assert config_from_dict(minimal(), tmp_path, {}).inhibit_rules == ()


def test_config_problems_with_paths(tmp_path: Path) -> None:
    data = minimal(inhibit_rules=[
        {"source_matchers": ['alertname="NodeDown"', "severity"],
         "target_matchers": ['instance=~"("'], "equal": ["instance", "instance"]},
        {"source_match": {"alertname": "NodeDown"}, "equal": [""]},
        "not a rule",
    ])
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, {})
    assert info.value.problems == [
        "inhibit_rules[0].equal: ['instance', 'instance'] has non-unique elements",
        'inhibit_rules[1].source_match: unknown key (did you mean "source_matchers"?)',
        "inhibit_rules[1].equal[0]: '' should be non-empty",
        "inhibit_rules[2]: expected object, got string",
        "inhibit_rules[0].source_matchers[1]: invalid matcher 'severity': expected an "
        "operator (=, !=, =~, !~) after 'severity'",
        "inhibit_rules[0].target_matchers[0]: invalid matcher 'instance=~\"(\"': invalid "
        "regular expression '(' for label 'instance': missing ): ( (RE2 syntax)",  # RE2's words
    ]


def test_broken_rules_are_left_out_when_parsed_directly() -> None:
    paths: list[str] = []
    rules = parse_inhibit_rules([{"source_matchers": ["a="], "target_matchers": ["b=~("]},
                                 {"target_matchers": ["b=c"]}],
                                lambda path, message: paths.append(path))
    assert paths == ["inhibit_rules[0].target_matchers[0]"]
    assert rules == (InhibitRule((), (Matcher("b", "=", "c"),)),)
