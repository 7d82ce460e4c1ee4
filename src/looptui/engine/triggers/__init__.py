"""Triggers: what starts a loop's run with no one at the keyboard, and the policies that
decide what a firing does when runs are already going or the service was down.

For now the kinds and the policy as `looptui.toml` declares them (`model`); the scheduler
that fires them comes next.
"""

from looptui.engine.triggers.model import (
    CATCH_UP_POLICIES,
    DEFAULT_DEBOUNCE,
    DEFAULT_TIMEZONE,
    FINAL_STATUSES,
    OVERLAP_POLICIES,
    TRIGGER_KINDS,
    After,
    CatchUpPolicy,
    Cron,
    Every,
    GitCommits,
    OverlapPolicy,
    Policy,
    Trigger,
    Watch,
)

__all__ = [
    "CATCH_UP_POLICIES",
    "DEFAULT_DEBOUNCE",
    "DEFAULT_TIMEZONE",
    "FINAL_STATUSES",
    "OVERLAP_POLICIES",
    "TRIGGER_KINDS",
    "After",
    "CatchUpPolicy",
    "Cron",
    "Every",
    "GitCommits",
    "OverlapPolicy",
    "Policy",
    "Trigger",
    "Watch",
]
