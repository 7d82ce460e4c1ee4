"""When a trigger shows as overdue: a fire time that passed with nobody to fire it."""

from __future__ import annotations

import pytest

from looptui.engine.store.ledger import ScheduleEntry
from looptui.engine.triggers.model import Cron, Every, Watch
from looptui.engine.triggers.overview import overdue

T0 = 1_800_007_200.0  # a whole minute


@pytest.mark.parametrize(
    ("trigger", "late", "scheduled", "expected"),
    [
        # a scheduler runs: late by the trigger's period (or a minute, if shorter)
        (Every(2.0), 1.0, True, False),
        (Every(2.0), 2.5, True, True),
        (Every(3600.0), 30.0, True, False),
        (Every(3600.0), 61.0, True, True),
        (Cron("* * * * *"), 30.0, True, False),
        (Cron("* * * * *"), 61.0, True, True),
        (Cron("0 3 * * *"), 61.0, True, True),
        # no scheduler runs: any fire time passed is overdue
        (Every(3600.0), 0.5, False, True),
        (Cron("0 3 * * *"), 0.5, False, True),
        (Every(3600.0), -10.0, False, False),
    ],
)
def test_overdue_is_judged_by_the_triggers_own_period(
    trigger: Every | Cron, late: float, scheduled: bool, expected: bool
) -> None:
    entry = ScheduleEntry("fix", trigger.name, T0, anchor=T0 - 3600.0)
    assert overdue("fix", trigger, entry, T0 + late, scheduled) is expected


def test_an_event_trigger_or_one_with_no_fire_time_is_never_overdue() -> None:
    assert not overdue("fix", Watch(("src/**",)), ScheduleEntry("fix", "watch", None), T0, False)
    assert not overdue("fix", Every(60.0), ScheduleEntry("fix", "every", None), T0, False)
    assert not overdue("fix", Every(60.0), None, T0, False)
