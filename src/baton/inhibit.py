"""Inhibition rules with Alertmanager's semantics: while a source alert fires, it mutes the
target alerts that share its values of the ``equal`` labels.

A target alert (one matching ``target_matchers``) is inhibited by a rule when a firing alert
matches ``source_matchers`` and has the same value as the target for every label in
``equal``. A missing label counts as the empty string, so a label both alerts lack is equal
(as in Alertmanager, where a missing label and an empty one are the same thing).

An alert matching both sides of a rule could mute itself, and two such alerts each other.
Alertmanager's rule prevents that: a target that also matches the source side is inhibited
only by sources that do not also match the target side. Choosing matchers so that no alert
matches both sides keeps rules easy to reason about.

Everything here is pure: the caller passes the alerts that fire now (a resolved alert
inhibits nothing), so the answer depends on nothing but its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .matcher import Matcher, matches_all, parse_matchers

Report = Callable[[str, str], None]  # (path, message), e.g. the config Checker's ``add``


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...] = ()
    target: tuple[Matcher, ...] = ()
    equal: tuple[str, ...] = ()

    def applies_to(self, target_labels: Mapping[str, str]) -> bool:
        """The alert is a target of this rule (whether or not anything inhibits it)."""
        return matches_all(self.target, target_labels)

    def inhibits(self, source_labels: Mapping[str, str],
                 target_labels: Mapping[str, str]) -> bool:
        """The alert ``source_labels``, when firing, inhibits the alert ``target_labels``."""
        if not (self.applies_to(target_labels) and matches_all(self.source, source_labels)):
            return False
        if any(source_labels.get(n, "") != target_labels.get(n, "") for n in self.equal):
            return False
        # Both on both sides (an alert and itself, or two alike): neither mutes the other.
        return not (matches_all(self.source, target_labels)
                    and matches_all(self.target, source_labels))

    def __str__(self) -> str:
        def listed(matchers: tuple[Matcher, ...]) -> str:
            return "{" + ", ".join(str(m) for m in matchers) + "}"
        equal = f" equal [{', '.join(self.equal)}]" if self.equal else ""
        return f"source {listed(self.source)} target {listed(self.target)}{equal}"


def inhibited_by(rules: Sequence[InhibitRule], target_labels: Mapping[str, str],
                 firing_sources: Iterable[Mapping[str, str]]
                 ) -> tuple[int, Mapping[str, str]] | None:
    """The first rule (its index in ``rules``) and firing alert (its labels) that inhibit
    ``target_labels``, or None. ``firing_sources`` are the labels of the alerts firing
    now; the target may be among them. Rules are tried in order, then sources in order."""
    sources: list[Mapping[str, str]] | None = None  # read only when a rule applies
    for index, rule in enumerate(rules):
        if not rule.applies_to(target_labels):
            continue
        if sources is None:
            sources = list(firing_sources)
        for source in sources:
            if rule.inhibits(source, target_labels):
                return index, source
    return None


def _matchers(items: Any, path: str, report: Report) -> tuple[Matcher, ...] | None:
    out: list[Matcher] = []
    ok = True
    for i, text in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(text, str):
            continue  # the schema reported it
        try:
            out.extend(parse_matchers(text))
        except ValueError as exc:
            report(f"{path}[{i}]", str(exc))
            ok = False
    return tuple(out) if ok else None


def parse_inhibit_rules(raw: Any, report: Report, path: str = "inhibit_rules"
                        ) -> tuple[InhibitRule, ...]:
    """The ``inhibit_rules`` section. Every problem goes to ``report`` with its path; a
    rule with a problem is left out of the result."""
    rules: list[InhibitRule] = []
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(item, dict):
            continue
        where = f"{path}[{i}]"
        source = _matchers(item.get("source_matchers"), f"{where}.source_matchers", report)
        target = _matchers(item.get("target_matchers"), f"{where}.target_matchers", report)
        equal = item.get("equal")
        names = tuple(n for n in equal if isinstance(n, str)) if isinstance(equal, list) else ()
        if source is not None and target is not None:
            rules.append(InhibitRule(source, target, names))
    return tuple(rules)
