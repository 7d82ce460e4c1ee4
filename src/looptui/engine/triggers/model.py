"""What starts a loop's run unattended, and what happens when firings collide.

A loop's triggers and its policy are parsed from `looptui.toml` (`config/triggers.py`) into
these frozen dataclasses. They hold only what the file said, checked: the scheduler that
fires them is built on top of them, and nothing here runs, watches or waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from looptui.engine.models import RunStatus

# The statuses a run ends in (or reaches after it ended): the ones an `after` trigger can
# wait for. An active run has not ended, so it can fire nothing; nor has a deferred one,
# which resumes by itself when its usage limit resets.
FINAL_STATUSES = tuple(
    status for status in RunStatus if not status.is_active and status is not RunStatus.DEFERRED
)

# A cron expression without a zone is read in UTC: the same times on every machine and in
# CI, and never an hour that happens twice or not at all when the local clocks change.
DEFAULT_TIMEZONE = "UTC"
DEFAULT_DEBOUNCE = 0.5  # seconds of quiet before a watch fires: well under a second of latency

OverlapPolicy = Literal["skip", "queue", "replace", "parallel"]
CatchUpPolicy = Literal["skip", "run_once"]
OVERLAP_POLICIES: tuple[OverlapPolicy, ...] = ("skip", "queue", "replace", "parallel")
CATCH_UP_POLICIES: tuple[CatchUpPolicy, ...] = ("skip", "run_once")


@dataclass(frozen=True)
class Cron:
    """Fires at the minutes a five-field cron expression names, read in `timezone` (IANA)."""

    KIND: ClassVar[str] = "cron"

    expression: str
    timezone: str = DEFAULT_TIMEZONE
    name: str = "cron"
    paused: bool = False


@dataclass(frozen=True)
class Every:
    """Fires every `interval_seconds`, each time up to `jitter_seconds` later at random."""

    KIND: ClassVar[str] = "every"

    interval_seconds: float
    jitter_seconds: float = 0.0
    name: str = "every"
    paused: bool = False


@dataclass(frozen=True)
class Watch:
    """Fires when files matching `globs` (relative to the repository) change, once they
    have been quiet for `debounce_seconds`. `ignore` adds globs to the built-in ignores
    (`.git`, looptui's own files, what git ignores, looptui's own writes)."""

    KIND: ClassVar[str] = "watch"

    globs: tuple[str, ...]
    debounce_seconds: float = DEFAULT_DEBOUNCE
    ignore: tuple[str, ...] = ()
    name: str = "watch"
    paused: bool = False


@dataclass(frozen=True)
class GitCommits:
    """Fires when `branch` gets new commits, made by looptui or not."""

    KIND: ClassVar[str] = "git"

    branch: str
    name: str = "git"
    paused: bool = False


@dataclass(frozen=True)
class After:
    """Fires when a run of the loop `loop` ends in one of `statuses` (a chain of loops)."""

    KIND: ClassVar[str] = "after"

    loop: str
    statuses: tuple[RunStatus, ...] = (RunStatus.SUCCEEDED,)
    name: str = "after"
    paused: bool = False


Trigger = Cron | Every | Watch | GitCommits | After
TRIGGER_KINDS: tuple[str, ...] = tuple(
    kind.KIND for kind in (Cron, Every, Watch, GitCommits, After)
)


@dataclass(frozen=True)
class Policy:
    """What a loop does when a trigger fires while its runs are active, and after the
    service was down.

    `overlap`: `skip` the firing, `queue` it (at most one waiting, later ones coalesced into
    it), `replace` the active run, or run in `parallel` up to `parallel_max`. `catch_up`:
    a missed firing is dropped (`skip`) or becomes one run (`run_once`) if it is at most
    `catch_up_max_age` seconds old; never one run per miss. `max_concurrent` bounds the
    loop's runs at once, under the global `settings.max_parallel`; None: only that one.
    """

    overlap: OverlapPolicy = "queue"
    parallel_max: int | None = None  # set exactly when overlap is "parallel"
    catch_up: CatchUpPolicy = "run_once"
    catch_up_max_age: float = 24 * 3600.0
    max_concurrent: int | None = None
