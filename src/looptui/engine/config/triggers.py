"""A loop's `triggers`, `policy` and the graph of its `after` edges, checked as they load.

Called by `parsing`, whose `_Parser` words every problem as one line naming the file, the
key path and what was expected. Nothing here fires a trigger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from looptui.engine.config.durations import parse_duration
from looptui.engine.config.model import LoopConfig
from looptui.engine.errors import ConfigError
from looptui.engine.models import RunStatus
from looptui.engine.triggers.model import (
    CATCH_UP_POLICIES,
    DEFAULT_DEBOUNCE,
    DEFAULT_TIMEZONE,
    FINAL_STATUSES,
    OVERLAP_POLICIES,
    TRIGGER_KINDS,
    After,
    Cron,
    Every,
    GitCommits,
    Policy,
    Trigger,
    Watch,
)

if TYPE_CHECKING:
    from looptui.engine.config.parsing import _Parser

MIN_INTERVAL = 1.0  # seconds: an `every` below it is a typo (`"500ms"`), not a schedule
# The options each kind takes besides its own key, `name` and `paused`.
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "cron": ("timezone",),
    "every": ("jitter",),
    "watch": ("debounce", "ignore"),
    "git": (),
    "after": ("statuses",),
}
_POLICY_KEYS = ("overlap", "parallel_max", "catch_up", "catch_up_max_age", "max_concurrent")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def parse_triggers(
    parser: _Parser, value: object, key: str, loops: Sequence[str]
) -> tuple[Trigger, ...]:
    """The loop's `[[triggers]]` tables; `loops` are the names an `after` may point to."""
    if not isinstance(value, list):
        raise parser.fail(key, "an array of trigger tables ([[...triggers]])", value)
    triggers: list[Trigger] = []
    names: set[str] = set()
    for index, item in enumerate(value):
        item_key = f"{key}[{index}]"
        table = parser.table(item, item_key)
        kinds = [kind for kind in TRIGGER_KINDS if kind in table]
        if len(kinds) != 1:
            got = f" (got {', '.join(kinds)})" if kinds else ""
            raise ConfigError(
                f"{parser.path}: {item_key}: expected exactly one of "
                f"{', '.join(TRIGGER_KINDS)}{got}"
            )
        kind = kinds[0]
        parser.only(table, item_key, (kind, *_KIND_KEYS[kind], "name", "paused"))
        name = parser.name(
            parser.string(table.get("name", kind), f"{item_key}.name"), f"{item_key}.name"
        )
        if name in names:
            raise parser.fail(
                f"{item_key}.name",
                f"a name no other trigger of the loop has (tell two {kind!r} triggers apart "
                'with name = "...")',
                name,
            )
        names.add(name)
        paused = parser.boolean(table.get("paused", False), f"{item_key}.paused")
        triggers.append(_trigger(parser, kind, table, item_key, loops, name, paused))
    return tuple(triggers)


def _trigger(
    parser: _Parser,
    kind: str,
    table: Mapping[str, Any],
    key: str,
    loops: Sequence[str],
    name: str,
    paused: bool,
) -> Trigger:
    value, value_key = table[kind], f"{key}.{kind}"
    if kind == "cron":
        return Cron(
            expression=_cron_expression(parser, value, value_key),
            timezone=_timezone(parser, table.get("timezone", DEFAULT_TIMEZONE), f"{key}.timezone"),
            name=name,
            paused=paused,
        )
    if kind == "every":
        interval = parse_duration(value)
        if interval is None or interval < MIN_INTERVAL:
            raise parser.fail(
                value_key, 'an interval of at least 1s, such as "30s", "15m" or "2h"', value
            )
        raw_jitter = table.get("jitter", 0)
        jitter = _non_negative_duration(parser, raw_jitter, f"{key}.jitter")
        if jitter >= interval:
            raise parser.fail(
                f"{key}.jitter", f"less than the interval ({interval:g}s)", raw_jitter
            )
        return Every(interval_seconds=interval, jitter_seconds=jitter, name=name, paused=paused)
    if kind == "watch":
        return Watch(
            globs=_globs(parser, value, value_key, empty=False),
            debounce_seconds=_non_negative_duration(
                parser, table.get("debounce", DEFAULT_DEBOUNCE), f"{key}.debounce"
            ),
            ignore=_globs(parser, table.get("ignore", []), f"{key}.ignore", empty=True),
            name=name,
            paused=paused,
        )
    if kind == "git":
        branch = parser.string(value, value_key)
        if not _is_branch_name(branch):
            raise parser.fail(value_key, "a branch name", branch)
        return GitCommits(branch=branch, name=name, paused=paused)
    loop = parser.string(value, value_key)
    if loop not in loops:
        raise parser.fail(value_key, f"the name of a loop ({', '.join(loops)})", loop)
    return After(
        loop=loop,
        statuses=_statuses(parser, table.get("statuses", ["succeeded"]), f"{key}.statuses"),
        name=name,
        paused=paused,
    )


def _cron_expression(parser: _Parser, value: object, key: str) -> str:
    expression = parser.string(value, key)
    # cronsim also takes a sixth field (seconds): a schedule finer than a minute is a typo.
    if len(expression.split()) != 5:
        raise parser.fail(
            key, "a cron expression of five fields (minute hour day month weekday)", expression
        )
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        reason = str(exc)
        raise parser.fail(
            key, f"a valid cron expression ({reason[:1].lower()}{reason[1:]})", expression
        ) from None
    return expression


def _timezone(parser: _Parser, value: object, key: str) -> str:
    zone = parser.string(value, key)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, not a key, a directory
        raise parser.fail(key, "an IANA time zone such as 'Europe/Paris' or 'UTC'", zone) from None
    return zone


def _non_negative_duration(parser: _Parser, value: object, key: str) -> float:
    seconds = parse_duration(value, allow_zero=True)
    if seconds is None:
        raise parser.fail(key, 'a duration of 0 or more, such as "2s" or "5m"', value)
    return seconds


def _globs(parser: _Parser, value: object, key: str, *, empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not (value or empty):
        expected = "a list" if empty else "a non-empty list"
        raise parser.fail(key, f'{expected} of globs, such as ["src/**/*.py"]', value)
    globs = parser.strings(value, key)
    for glob in globs:
        if glob.startswith("/") or ".." in PurePosixPath(glob).parts:
            raise parser.fail(key, "globs relative to the repository (no leading / or ..)", glob)
    return globs


def _is_branch_name(name: str) -> bool:
    """Whether git would take `name` as a branch (`git check-ref-format --branch`), without
    running git: the branch may not exist yet when the config loads."""
    if _BRANCH_FORBIDDEN.search(name) or name == "@":
        return False
    if name.startswith(("-", "/")) or name.endswith(("/", ".")):
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


def _statuses(parser: _Parser, value: object, key: str) -> tuple[RunStatus, ...]:
    finals = [status.value for status in FINAL_STATUSES]
    expected = f"a non-empty list of final statuses ({', '.join(finals)})"
    if not isinstance(value, list) or not value:
        raise parser.fail(key, expected, value)
    for status in value:
        if status not in finals:
            raise parser.fail(key, expected, status)
    return tuple(RunStatus(status) for status in dict.fromkeys(value))


def parse_policy(parser: _Parser, value: object, key: str) -> Policy:
    """The loop's `[policy]` table: overlap, catch-up and its concurrency bound."""
    table = parser.table(value, key)
    parser.only(table, key, _POLICY_KEYS)
    overlap = table.get("overlap", Policy.overlap)
    if overlap not in OVERLAP_POLICIES:
        raise parser.fail(f"{key}.overlap", f"one of {', '.join(OVERLAP_POLICIES)}", overlap)
    parallel_max = table.get("parallel_max")
    if overlap == "parallel":
        if parallel_max is None:
            raise parser.fail(f"{key}.parallel_max", 'a positive integer with overlap = "parallel"')
        parallel_max = parser.positive_int(parallel_max, f"{key}.parallel_max")
    elif parallel_max is not None:
        raise ConfigError(
            f'{parser.path}: {key}.parallel_max: only applies with overlap = "parallel"'
        )
    catch_up = table.get("catch_up", Policy.catch_up)
    if catch_up not in CATCH_UP_POLICIES:
        raise parser.fail(f"{key}.catch_up", f"one of {', '.join(CATCH_UP_POLICIES)}", catch_up)
    if catch_up == "skip" and "catch_up_max_age" in table:
        raise ConfigError(
            f'{parser.path}: {key}.catch_up_max_age: only applies with catch_up = "run_once"'
        )
    max_concurrent = table.get("max_concurrent")
    return Policy(
        overlap=overlap,
        parallel_max=parallel_max,
        catch_up=catch_up,
        catch_up_max_age=parser.duration(
            table.get("catch_up_max_age", Policy.catch_up_max_age), f"{key}.catch_up_max_age"
        ),
        max_concurrent=None
        if max_concurrent is None
        else parser.positive_int(max_concurrent, f"{key}.max_concurrent"),
    )


def check_after_edges(path: Path, loops: Mapping[str, LoopConfig]) -> None:
    """Refuse `after` triggers whose loops would fire one another forever, naming the cycle
    in the order runs would fire: `a -> b -> a` (b runs after a, and a after b)."""
    cycle = after_cycle(loops)
    if cycle is not None:
        # the edge that closes the cycle: the first loop's `after` its predecessor
        first, predecessor = cycle[0], cycle[-2]
        index = next(
            i
            for i, trigger in enumerate(loops[first].triggers)
            if isinstance(trigger, After) and trigger.loop == predecessor
        )
        raise ConfigError(
            f"{path}: loops.{first}.triggers[{index}]: `after` triggers form a cycle, each "
            f"loop firing the next: {' -> '.join(cycle)}"
        )


def after_cycle(loops: Mapping[str, LoopConfig]) -> list[str] | None:
    """The first cycle of `after` edges (its first loop repeated at the end), or None."""
    fires: dict[str, list[str]] = {name: [] for name in loops}
    for name, loop in loops.items():
        for trigger in loop.triggers:
            if isinstance(trigger, After) and trigger.loop in fires:
                fires[trigger.loop].append(name)
    done: set[str] = set()
    for start in loops:
        if start in done:
            continue
        # Depth first without recursion: a long chain of loops must not hit the stack limit.
        path = [start]
        pending: list[Iterator[str]] = [iter(fires[start])]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                done.add(path.pop())
                pending.pop()
            elif following in path:
                return [*path[path.index(following) :], following]
            elif following not in done:
                path.append(following)
                pending.append(iter(fires[following]))
    return None
