"""Policy targets to people, at the moment they are notified.

``to: person:NAME`` gives that person's contacts to the connector, ``team:NAME`` every
member, ``schedule:NAME`` whoever is on call then. Other ``to`` values (a chat channel,
an address) are the connector's to interpret and pass through untouched.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from .config import Config
from .schedule import RECIPIENT_KINDS, resolve_target
from .store import Resolver, TargetSpec


def make_resolver(config: Config) -> Resolver:
    def resolve(target: TargetSpec, at: float) -> list[TargetSpec]:
        if not target.to or target.to.partition(":")[0] not in RECIPIENT_KINDS:
            return [target]
        try:
            keys = resolve_target(target.to, datetime.fromtimestamp(at, UTC), config.people,
                                  config.teams, config.schedules)
        except ValueError:
            # Named in a policy snapshot but gone from the current config: nobody to tell;
            # the timeline shows the target with no person.
            keys = []
        return [dataclasses.replace(target, person=key, contacts=dict(
                    config.people[key].contacts) if key in config.people else {})
                for key in keys]

    return resolve
