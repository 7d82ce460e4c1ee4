"""The event triggers' watchers: files (`watch`) and branch tips (`git`).

Files: one watchfiles watcher over the repository. It never sees `.git` (looptui's store and
state live there) or the worktrees, and drops what git ignores and what looptui itself wrote
(a merge into the checkout). Each trigger gathers the changed paths that match its globs and
fires once they have been quiet for its debounce (or, in a storm that never quiets, after
STORM_WAIT): ten thousand changes are one firing. Paths whose firing was skipped, because a
run of the loop was going, are kept for the trigger's next firing: nothing is lost.

Branches: each `git` trigger's branch tip, read when its ref files change (a stat a second)
and compared with the tip it last saw, which the schedule stores with the firing it makes (in
one transaction): commits made while the service was down fire once when it starts, commits
made outside looptui included, and commits made while the trigger was paused never do.

A firing runs as the scheduler's task, not the watcher's: a config reload that restarts the
watchers never cuts one off halfway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import watchfiles

from looptui.engine.config import LoopConfig
from looptui.engine.errors import WorkspaceError
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.describe import describe, spec_of
from looptui.engine.triggers.firings import Firings
from looptui.engine.triggers.model import GitCommits, Trigger, Watch
from looptui.engine.verification.families import matches_any

logger = logging.getLogger(__name__)

BATCH_MS = 200  # watchfiles groups the changes of up to this many milliseconds
STEP_MS = 10  # and hands them over after this many milliseconds with no new change
READY_MS = 200  # and says it is watching (an empty batch) this often while nothing changes
READY_TIMEOUT = 10.0  # seconds the service waits, at start, for its watchers to watch
STORM_WAIT = 10.0  # seconds: a trigger whose changes never quiet fires after this anyway
GIT_POLL = 1.0  # seconds between looks at the branch refs (a stat each)
MAX_KEPT_PATHS = 10_000  # paths a trigger gathers before it fires; the rest are counted


@dataclass
class _Gathered:
    """The changed paths one `watch` trigger has seen and not yet handed to a firing."""

    paths: set[str] = field(default_factory=set)
    more: int = 0  # paths beyond MAX_KEPT_PATHS
    first_at: float | None = None  # when the current burst began (loop time)
    timer: asyncio.Task[None] | None = None


class Watchers:
    """Runs the watchers of a scheduler's loops until closed."""

    def __init__(self, scheduler: Firings) -> None:
        self.scheduler = scheduler
        self.repository = scheduler.engine.repository
        self.root = self.repository.root
        self._files_ready = asyncio.Event()  # the file watcher is watching
        self._branches_ready = asyncio.Event()  # every branch's tip was read once
        self._gathered: dict[tuple[str, str], _Gathered] = {}
        self._tips: dict[tuple[str, str], str | None] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.Task[None]] = set()  # the debounces
        self._stop = asyncio.Event()
        self.watching: tuple[tuple[str, str], ...] = ()  # the triggers being watched

    def wanted(self) -> tuple[tuple[str, str], ...]:
        """The watch and git triggers the config asks for, as (loop, spec): when these
        change, the watchers restart."""
        return tuple(
            (loop.name, spec_of(trigger))
            for kind in (Watch, GitCommits)
            for loop, trigger in self._triggers(kind)
        )

    def _triggers(self, kind: type) -> list[tuple[LoopConfig, Trigger]]:
        config = self.scheduler.config
        loops = config.loops.values() if config else ()
        return [(loop, t) for loop in loops for t in loop.triggers if isinstance(t, kind)]

    async def start(self) -> None:
        """Start watching what the config's triggers ask for."""
        self._stop = asyncio.Event()
        self._files_ready, self._branches_ready = asyncio.Event(), asyncio.Event()
        self.watching = self.wanted()
        self._tips = {}  # read again from the stored schedule
        self._rearm()
        if self._triggers(Watch):
            watching = self._said_if_it_dies(self._watch_files(), "the file watcher")
            self._tasks.append(asyncio.create_task(watching, name="watch-files"))
        else:
            self._files_ready.set()
        if self._triggers(GitCommits):
            watching = self._said_if_it_dies(self._watch_branches(), "the branch watcher")
            self._tasks.append(asyncio.create_task(watching, name="watch-git"))
        else:
            self._branches_ready.set()

    async def _said_if_it_dies(self, watching: Coroutine[Any, Any, None], what: str) -> None:
        """Run a watcher; if it fails (too many directories for inotify, say), its triggers
        stop firing, and the service's errors (`looptui service status`) say so and why."""
        try:
            await watching
        except Exception as exc:
            logger.exception("%s stopped", what)
            message = f"{what} stopped, its triggers no longer fire: {exc}"
            with contextlib.suppress(Exception):
                await self.scheduler.store.add_service_error(message)
            self._files_ready.set()  # nobody waits for a watcher that is gone
            self._branches_ready.set()

    async def wait_ready(self) -> None:
        """Wait (up to READY_TIMEOUT) until the watchers watch, so that a change made once
        the service answers is never missed."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self._files_ready.wait()
                await self._branches_ready.wait()
        except TimeoutError:
            logger.warning("the watchers were not ready after %gs", READY_TIMEOUT)

    @property
    def ready(self) -> bool:
        """Whether the watchers watch: from now on no change is missed (for tests)."""
        return self._files_ready.is_set() and self._branches_ready.is_set()

    async def close(self) -> None:
        self._stop.set()
        timers = list(self._timers)
        for task in [*self._tasks, *timers]:
            task.cancel()
        await asyncio.gather(*self._tasks, *timers, return_exceptions=True)
        self._tasks = []
        for gathered in self._gathered.values():
            gathered.timer, gathered.first_at = None, None

    async def restart(self) -> None:
        """The config changed: watch what it asks for now (gathered paths are kept)."""
        await self.close()
        await self.start()

    def _rearm(self) -> None:
        """Paths gathered before a restart fire after their trigger's debounce; those of a
        trigger the config no longer has are dropped."""
        triggers = {(loop.name, t.name): t for loop, t in self._triggers(Watch)}
        for key in list(self._gathered):
            trigger = triggers.get(key)
            if trigger is None:
                del self._gathered[key]
            elif self._gathered[key].paths:
                assert isinstance(trigger, Watch)
                self._gather(key, trigger, set())

    # -- files --------------------------------------------------------------------------------

    async def _watch_files(self) -> None:
        skip = [str(self.repository.common_dir), str(self.repository.worktrees_dir)]
        git_dir = str(self.root / ".git")

        def wanted(change: watchfiles.Change, path: str) -> bool:
            if path == git_dir or path.startswith(git_dir + os.sep):
                return False
            return not any(path == top or path.startswith(top + os.sep) for top in skip)

        async for changes in watchfiles.awatch(
            self.root,
            watch_filter=wanted,
            debounce=BATCH_MS,
            step=STEP_MS,
            rust_timeout=READY_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
        ):
            self._files_ready.set()
            top = str(self.root) + os.sep
            if changes:
                await self._changed({path.removeprefix(top) for _, path in changes})

    async def _changed(self, paths: set[str]) -> None:
        paths = {path.replace(os.sep, "/") for path in paths if not os.path.isabs(path)}
        matches: list[tuple[tuple[str, str], Watch, set[str]]] = []
        for loop, trigger in self._triggers(Watch):
            assert isinstance(trigger, Watch)
            matched = {
                path
                for path in paths
                if matches_any(trigger.globs, path) and not matches_any(trigger.ignore, path)
            }
            if matched:
                matches.append(((loop.name, trigger.name), trigger, matched))
        if not matches:  # git is asked only about paths some trigger wants
            return
        ignored = await asyncio.to_thread(
            self._ignored_by_git, set().union(*(matched for _, _, matched in matches))
        )
        for key, trigger, matched in matches:
            if matched - ignored:
                self._gather(key, trigger, matched - ignored)

    def _ignored_by_git(self, paths: Iterable[str]) -> set[str]:
        """The paths git ignores (one `git check-ignore` for the whole batch)."""
        listed = "\0".join(paths) + "\0"
        try:
            result = subprocess.run(
                ["git", "check-ignore", "--stdin", "-z"],
                cwd=self.root,
                input=listed.encode(),
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return set()
        return {path for path in result.stdout.decode(errors="replace").split("\0") if path}

    def _gather(self, key: tuple[str, str], trigger: Watch, paths: set[str]) -> None:
        gathered = self._gathered.setdefault(key, _Gathered())
        room = MAX_KEPT_PATHS - len(gathered.paths)
        new = paths - gathered.paths
        gathered.paths |= set(list(new)[: max(room, 0)])
        gathered.more += max(len(new) - max(room, 0), 0)
        now = asyncio.get_running_loop().time()
        if gathered.first_at is None:
            gathered.first_at = now
        if gathered.timer is not None:
            gathered.timer.cancel()
        # quiet for the debounce, but never later than STORM_WAIT after the burst began
        wait = min(trigger.debounce_seconds, gathered.first_at + STORM_WAIT - now)
        timer = asyncio.create_task(self._fire_after_quiet(key, trigger, max(wait, 0)))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
        gathered.timer = timer

    async def _fire_after_quiet(self, key: tuple[str, str], trigger: Watch, wait: float) -> None:
        await asyncio.sleep(wait)
        gathered = self._gathered[key]
        gathered.timer = None  # from here on, a new change starts a new wait
        own = self.scheduler.engine.own_writes
        paths = sorted(p for p in gathered.paths if not own.is_own(self.root, p))
        gathered.first_at = None
        if not paths:
            gathered.paths.clear()
            return
        loop_name, trigger_name = key
        entry = await self.scheduler.store.schedule_entry(loop_name, trigger_name)
        if entry is not None and entry.paused:
            gathered.paths.clear()  # a paused trigger does not fire, now or later
            return
        payload: dict[str, object] = {
            "fired_by": f"{describe(trigger)}: {len(paths) + gathered.more} changed",
            "changed_paths": paths,
        }
        if gathered.more:
            payload["more_paths"] = gathered.more
        handed = set(paths)
        gathered.paths -= handed
        more, gathered.more = gathered.more, 0
        self.scheduler.spawn(self._hand_over(key, payload, handed, more))

    async def _hand_over(
        self, key: tuple[str, str], payload: dict[str, object], handed: set[str], more: int
    ) -> None:
        """Fire the trigger with the paths it gathered; the paths its firing could not
        deliver (a run of the loop was going) feed its next firing."""
        loop_name, trigger_name = key
        try:
            firing = await self.scheduler.fire(loop_name, trigger_name, payload)
        except Exception:
            logger.exception("the watch trigger %s/%s could not fire", loop_name, trigger_name)
            firing = None
        if firing is None or not await self._delivered(firing):
            gathered = self._gathered.setdefault(key, _Gathered())
            gathered.paths |= handed
            gathered.more += more

    async def _delivered(self, firing: Firing) -> bool:
        """Whether the paths a firing carried reach a run's prompt: not when it was skipped,
        nor when it joined a firing whose run had already started."""
        if firing.outcome is Outcome.SKIPPED:
            return False
        if firing.outcome is Outcome.COALESCED and firing.coalesced_into is not None:
            target = await self.scheduler.store.firing(firing.coalesced_into)
            return target.run_id is None
        return True

    # -- branches -----------------------------------------------------------------------------

    async def _watch_branches(self) -> None:
        stamps: dict[tuple[str, str], tuple[int, int]] = {}
        while not self._stop.is_set():
            for loop, trigger in self._triggers(GitCommits):
                assert isinstance(trigger, GitCommits)
                stamp = self._ref_stamp(trigger.branch)
                key = (loop.name, trigger.name)
                if stamps.get(key) == stamp and key in self._tips:
                    continue
                try:
                    await self._look_at_branch(loop, trigger)
                except Exception:  # the store was busy, say: looked at again next time
                    logger.exception("the git trigger %s/%s could not look", *key)
                    continue
                stamps[key] = stamp
            self._branches_ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), GIT_POLL)

    def _ref_stamp(self, branch: str) -> tuple[int, int]:
        common = self.repository.common_dir
        stamp = []
        for path in (common / "refs" / "heads" / branch, common / "packed-refs"):
            try:
                stamp.append(path.stat().st_mtime_ns)
            except OSError:
                stamp.append(0)
        return (stamp[0], stamp[1])

    async def _look_at_branch(self, loop: LoopConfig, trigger: GitCommits) -> None:
        """Read the branch's tip; when it moved since the trigger last looked, store the new
        tip with the firing it makes (none while paused, none at first sight: the baseline)."""
        key = (loop.name, trigger.name)
        try:
            tip = await asyncio.to_thread(self.repository.branch_commit, trigger.branch)
        except WorkspaceError:
            return  # no such branch (yet)
        entry = await self.scheduler.store.schedule_entry(loop.name, trigger.name)
        if key not in self._tips:
            self._tips[key] = entry.last_tip if entry is not None else None
        previous = self._tips[key]
        if previous == tip:
            return
        fire: tuple[float, dict[str, object]] | None = None
        if previous is not None and not (entry is not None and entry.paused):
            commit = await asyncio.to_thread(self._describe_commits, previous, tip)
        else:
            commit = None
        if commit is not None and commit["count"] == 0:
            logger.info("%s moved back to %s: no new commits", trigger.branch, tip[:12])
        elif commit is not None:
            said: dict[str, object] = {
                "fired_by": f"{describe(trigger)}: {tip[:12]} {commit['subject']}",
                "commit": commit,
            }
            fire = (self.scheduler.clock.now(), said)
        firing_id = await self.scheduler.store.record_tip(loop.name, trigger.name, tip, fire=fire)
        self._tips[key] = tip
        if fire is not None and firing_id is not None:
            due_at, payload = fire
            self.scheduler.spawn(
                self.scheduler.fire(loop.name, trigger.name, payload, due_at, firing_id)
            )

    def _describe_commits(self, previous: str | None, tip: str) -> dict[str, object]:
        subject = self.repository.commit_subject(tip)
        count = 1
        if previous is not None:
            with contextlib.suppress(WorkspaceError):  # history rewritten: just the tip
                count = self.repository.commits_between(previous, tip)
        return {"sha": tip, "subject": subject, "previous": previous, "count": count}
