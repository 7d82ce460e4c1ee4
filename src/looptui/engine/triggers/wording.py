"""The schedule in words, one wording for `looptui loops` and the TUI's loops view: when a
trigger fires next (or why it will not), what became of a firing, and a loop in one line.

Plain text, no styles: each front end colours it its own way."""

from __future__ import annotations

import time

from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.overview import LoopState, TriggerState

NOT_SCHEDULED = (
    "the looptui service is not running, so no trigger fires (`looptui service start` "
    "starts it; any command that starts a run does too)"
)
# outcomes that mean the firing did not do what it was for: worth a warning
UNDONE = (Outcome.SKIPPED, Outcome.FAILED, Outcome.REFUSED)


def loop_line(state: LoopState) -> str:
    """`tick  2 triggers · 1 run going (ab12cd34) · firing #7 waiting`."""
    parts = [f"{len(state.triggers)} trigger{'s' if len(state.triggers) != 1 else ''}"]
    if not state.triggers:
        parts = ["no triggers: run by hand"]
    if state.active_runs:
        count = len(state.active_runs)
        parts.append(
            f"{count} run{'s' if count != 1 else ''} going ({', '.join(state.active_runs)})"
        )
    if state.waiting is not None:
        parts.append(f"firing #{state.waiting} waiting")
    return f"{state.name}  " + " · ".join(parts)


def when(trigger: TriggerState, now: float) -> str:
    """When the trigger fires next: `next 2026-11-02 03:00 (in 5h 12m)`, `paused`,
    `OVERDUE since ...` (due, and no scheduler fired it), `on change`, `on run end`."""
    if trigger.paused:
        return "paused"
    if trigger.kind not in ("cron", "every"):
        return "on change" if trigger.kind in ("watch", "git") else "on run end"
    if trigger.next_due_at is None:
        return "not scheduled: no service has run" if not trigger.known else "never again"
    at = time.strftime("%Y-%m-%d %H:%M", time.localtime(trigger.next_due_at))
    if trigger.overdue:
        return f"OVERDUE since {at} ({span(now - trigger.next_due_at)} ago)"
    return f"next {at} (in {span(max(trigger.next_due_at - now, 0))})"


def span(seconds: float) -> str:
    """A rough length of time: `45s`, `12m`, `3h 5m`, `2d 4h`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def firing_line(firing: Firing, with_loop: bool = False) -> str:
    """`#12    2026-11-02 03:00:01  nightly    started run ab12cd34`."""
    loop = f"{firing.loop:<12} " if with_loop else ""
    at = moment(firing.fired_at)
    return f"#{firing.id:<5} {at}  {loop}{firing.trigger:<10} {outcome_text(firing)}"


def moment(timestamp: float) -> str:
    """When a firing fired, in local time, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def outcome_text(firing: Firing) -> str:
    """What became of the firing, as a phrase: `started run ab12cd34`, `folded into firing
    #3`, `skipped: a run of the loop is going`."""
    match firing.outcome:
        case Outcome.PENDING if firing.run_id:
            return f"starting run {firing.run_id}"
        case Outcome.PENDING:
            return "waiting (for the loop's run to end, or its `when`)"
        case Outcome.STARTED:
            return f"started run {firing.run_id}"
        case Outcome.COALESCED:
            return f"folded into firing #{firing.coalesced_into}"
        case Outcome.DEFERRED if firing.retry_at:
            at = time.strftime("%H:%M", time.localtime(firing.retry_at))
            return f"deferred until {at}" + (f": {firing.reason}" if firing.reason else "")
    text = str(firing.outcome).replace("_", " ")
    return text + (f": {firing.reason}" if firing.reason else "")
