"""Triggers in words, for the ledger, the prompt's `{fired_by}` and `looptui loops`; and
the stable text of a trigger's definition, by which the schedule notices an edited one."""

from __future__ import annotations

import dataclasses
import json

from looptui.engine.triggers.model import After, Cron, Every, GitCommits, Trigger, Watch


def describe(trigger: Trigger) -> str:
    """One short phrase: `cron "0 3 * * *" (Europe/Paris)`, `every 2h`, `watch src/**/*.py`."""
    match trigger:
        case Cron(expression=expression, timezone=zone):
            return f'cron "{expression}" ({zone})'
        case Every(interval_seconds=interval, jitter_seconds=jitter):
            text = f"every {duration_text(interval)}"
            return text + (f" (+ up to {duration_text(jitter)})" if jitter else "")
        case Watch(globs=globs):
            return "watch " + ", ".join(globs)
        case GitCommits(branch=branch):
            return f"new commits on {branch}"
        case After(loop=loop, statuses=statuses):
            return f"after {loop} " + "/".join(str(status) for status in statuses)
    raise TypeError(f"not a trigger: {trigger!r}")


def spec_of(trigger: Trigger) -> str:
    """The trigger's whole definition as stable text (its kind and every field)."""
    fields = dataclasses.asdict(trigger)
    return json.dumps({"kind": trigger.KIND, **fields}, sort_keys=True, default=str)


def duration_text(seconds: float) -> str:
    """`90` -> `1m30s`, `7200` -> `2h`, `0.5` -> `0.5s`."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
