"""The `watch` and `git` triggers, on a real repository with the real watchfiles watcher:
what they fire on, what they ignore, storms, changes made while a run is going, and commits
made outside looptui, also while the service was down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import git
from looptui.engine import load_config
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.clock import SystemClock
from scheduler_support import Rig, loop, rig, until

pytestmark = pytest.mark.timeout(120)
FILES = {
    "README.md": "hi\n",
    ".gitignore": "src/generated.py\n",
    "src/app.py": "print('app')\n",
    "src/deep/__init__.py": "",
    "src/storm/__init__.py": "",
}


def watching(**policy: str) -> dict[str, object]:
    return loop(
        "hold" if policy else "quick",
        prompt="These changed:\n{changed_paths}",
        triggers=[{"watch": ["src/**/*.py"], "debounce": "0.5s"}],
        policy=policy or {"overlap": "queue"},
    )


async def ready(r: Rig) -> Path:
    watchers = r.scheduler.watchers  # type: ignore[attr-defined]
    await until(lambda: _value(watchers.ready), bool)
    return r.engine.repository.root


async def _value(value: object) -> object:
    return value


async def fired(r: Rig, count: int = 1) -> list[Firing]:
    return await until(lambda: r.firings("docs"), lambda found: len(found) >= count)


async def test_a_watch_fires_once_for_the_files_its_globs_match_and_nothing_else(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, {"docs": watching()}, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        git(root, "commit", "--allow-empty", "-q", "-m", "only .git changes")
        (root / "notes.md").write_text("not matched\n")
        (root / "src" / "generated.py").write_text("ignored by git\n")
        (root / "src" / "app.py").write_text("print('changed')\n")
        (root / "src" / "deep" / "new.py").write_text("x = 1\n")
        (firing,) = await fired(r)
        assert firing.trigger == "watch"
        assert firing.payload["changed_paths"] == ["src/app.py", "src/deep/new.py"]
        started = await r.settled(firing.id)
        assert started.run_id is not None
        prompt = await r.prompt_of(started.run_id)
        assert "These changed:\n- src/app.py\n- src/deep/new.py" in prompt
        assert len(await r.firings("docs")) == 1


async def test_a_storm_of_changes_is_one_firing(tmp_path: Path) -> None:
    async with rig(tmp_path, {"docs": watching()}, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        storm = root / "src" / "storm"
        for index in range(2000):
            (storm / f"f{index}.py").write_text(f"n = {index}\n")
        (firing,) = await fired(r)
        await r.settled(firing.id)
        assert len(firing.payload["changed_paths"]) == 2000
        assert len(await r.firings("docs")) == 1


async def test_changes_made_while_a_run_goes_are_kept_for_the_next_firing(tmp_path: Path) -> None:
    async with rig(
        tmp_path, {"docs": watching(overlap="skip")}, files=FILES, clock=SystemClock()
    ) as r:
        root = await ready(r)
        (root / "src" / "one.py").write_text("1\n")
        (first,) = await fired(r)
        first = await r.settled(first.id)
        assert first.payload["changed_paths"] == ["src/one.py"]
        (root / "src" / "two.py").write_text("2\n")  # the run is going: skipped...
        _, skipped = await fired(r, 2)
        assert skipped.outcome is Outcome.SKIPPED
        r.release()
        assert first.run_id is not None
        await r.engine.wait(first.run_id)
        (r.tmp / "release").unlink()
        (root / "src" / "three.py").write_text("3\n")  # ...and not lost
        *_, third = await fired(r, 3)
        third = await r.settled(third.id)
        assert third.payload["changed_paths"] == ["src/three.py", "src/two.py"]
        assert third.run_id is not None
        assert "- src/three.py\n- src/two.py" in await r.prompt_of(third.run_id)


async def test_what_a_merge_writes_into_the_checkout_fires_no_watch(tmp_path: Path) -> None:
    edit = loop(
        "maker",
        checks=[{"name": "made", "run": "test -e made.txt"}],
        prompt="Make made.txt.",
    )
    # the maker writes made.txt; the watch looks at every file
    docs = loop("quick", triggers=[{"watch": ["**"], "debounce": "0.5s"}])
    async with rig(tmp_path, {"edit": edit, "docs": docs}, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        run = await r.engine.start_run("edit")
        await r.engine.wait(run.id)
        await r.engine.merge(run.id)
        assert (root / "made.txt").read_text() == "made"  # the merge wrote the checkout
        (root / "mine.txt").write_text("the user's own\n")
        (firing,) = await fired(r)
        assert firing.payload["changed_paths"] == ["mine.txt"]


async def test_a_git_trigger_fires_on_commits_made_outside_looptui_even_while_down(
    tmp_path: Path,
) -> None:
    loops = {"docs": loop(prompt="Review {commit}.", triggers=[{"git": "main"}])}
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        (root / "a.txt").write_text("a\n")
        git(root, "add", "a.txt")
        git(root, "commit", "-q", "-m", "add a")
        tip = git(root, "rev-parse", "HEAD").strip()
        (firing,) = await fired(r)
        assert firing.trigger == "git"
        assert firing.payload["commit"]["sha"] == tip
        assert firing.payload["commit"]["subject"] == "add a"
        started = await r.settled(firing.id)
        assert started.run_id is not None
        assert f"Review {tip[:12]} add a." in await r.prompt_of(started.run_id)
    # down: two commits land; the next start fires once, for both
    for name in ("b", "c"):
        (root / f"{name}.txt").write_text(name)
        git(root, "add", f"{name}.txt")
        git(root, "commit", "-q", "-m", f"add {name}")
    async with rig(tmp_path, loops, root=root, clock=SystemClock()) as r:
        _, caught_up = await fired(r, 2)
        assert caught_up.payload["commit"]["subject"] == "add c"
        assert caught_up.payload["commit"]["count"] == 2
        assert caught_up.payload["commit"]["previous"] == tip


async def test_a_watcher_that_dies_says_so_in_the_services_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_more_watches(*args: object, **kwargs: object) -> object:
        # the operating system's answer when its inotify watches run out
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr("looptui.service.watchers.watchfiles.awatch", no_more_watches)
    async with rig(tmp_path, {"docs": watching()}, files=FILES, clock=SystemClock()) as r:
        await ready(r)  # not waited for in vain
        errors = await until(lambda: r.engine.store.service_errors(10), bool)
        (_, _, message) = errors[0]
        assert message.startswith("the file watcher stopped, its triggers no longer fire:")
        assert "inotify watch limit reached" in message


def slow_when(tmp: Path) -> list[str]:
    """A `when` command that holds until the test writes `go`, then says there is work."""
    go = tmp / "go"
    return [f"while [ ! -e {go} ]; do sleep 0.01; done"]


async def test_a_config_reload_during_a_slow_when_strands_no_firing(tmp_path: Path) -> None:
    docs = loop(
        prompt="These changed:\n{changed_paths}",
        triggers=[{"watch": ["src/**/*.py"], "debounce": "0.2s"}],
        when=slow_when(tmp_path),
    )
    async with rig(tmp_path, {"docs": docs}, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        watchers = r.scheduler.watchers  # type: ignore[attr-defined]
        tasks = list(watchers._tasks)
        (root / "src" / "app.py").write_text("print('changed')\n")
        (firing,) = await fired(r)  # its `when` is running now
        # the config is reloaded with the same triggers and another prompt
        config = r.engine.config
        assert config is not None
        r.engine.reconfigure(config)
        r.scheduler.reconfigure()
        await until(lambda: _value(r.scheduler._tasks), lambda tasks: len(tasks) >= 1)
        assert watchers._tasks == tasks  # unchanged triggers: the watchers were not restarted
        (tmp_path / "go").write_text("go")
        started = await r.settled(firing.id)
        assert started.outcome is Outcome.STARTED and started.run_id is not None
        assert "- src/app.py" in await r.prompt_of(started.run_id)


async def test_restarted_watchers_finish_the_firing_in_flight_and_keep_gathered_paths(
    tmp_path: Path,
) -> None:
    docs = loop(
        prompt="These changed:\n{changed_paths}",
        triggers=[{"watch": ["src/**/*.py"], "debounce": "0.2s"}],
        when=slow_when(tmp_path),
    )
    async with rig(tmp_path, {"docs": docs}, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        watchers = r.scheduler.watchers  # type: ignore[attr-defined]
        (root / "src" / "app.py").write_text("print('changed')\n")
        (firing,) = await fired(r)
        await watchers.restart()  # what a reload that edits a watch trigger does
        await ready(r)
        (tmp_path / "go").write_text("go")
        started = await r.settled(firing.id)
        assert started.outcome is Outcome.STARTED
        assert "- src/app.py" in await r.prompt_of(started.run_id or "")


def commit(root: Path, name: str) -> str:
    (root / f"{name}.txt").write_text(name)
    git(root, "add", f"{name}.txt")
    git(root, "commit", "-q", "-m", f"add {name}")
    return git(root, "rev-parse", "HEAD").strip()


async def test_a_git_trigger_that_never_fired_sees_the_commits_made_while_down(
    tmp_path: Path,
) -> None:
    loops = {"docs": loop(prompt="Review {commit}.", triggers=[{"git": "main"}])}
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        base = git(root, "rev-parse", "HEAD").strip()
        entry = await r.engine.store.schedule_entry("docs", "git")
        assert entry is not None and entry.last_tip == base  # the baseline, stored
        assert await r.firings("docs") == []
    tip = commit(root, "b")
    async with rig(tmp_path, loops, root=root, clock=SystemClock()) as r:
        (firing,) = await fired(r)
        assert firing.payload["commit"]["sha"] == tip
        assert firing.payload["commit"]["previous"] == base
        assert (await r.settled(firing.id)).outcome is Outcome.STARTED
    async with rig(tmp_path, loops, root=root, clock=SystemClock()) as r:
        await ready(r)  # nothing new: no second firing for the same commit
        assert len(await r.firings("docs")) == 1


async def test_commits_made_while_a_git_trigger_was_paused_never_fire(tmp_path: Path) -> None:
    loops = {"docs": loop(prompt="Review {commit}.", triggers=[{"git": "main"}])}
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        await r.scheduler.pause("docs", "git")
        commit(root, "b")  # seen while paused, the service up
        await until(
            lambda: r.engine.store.schedule_entry("docs", "git"),
            lambda entry: entry.last_tip == git(root, "rev-parse", "HEAD").strip(),
        )
    commit(root, "c")  # while down, and paused
    async with rig(tmp_path, loops, root=root, clock=SystemClock()) as r:
        await ready(r)
        await r.scheduler.unpause("docs", "git")
        tip = commit(root, "d")  # the first commit after it was resumed
        (firing,) = await fired(r)
        assert firing.payload["commit"]["sha"] == tip
        assert firing.payload["commit"]["count"] == 1


async def test_a_slow_when_of_one_loop_holds_up_no_other_git_trigger(tmp_path: Path) -> None:
    loops = {
        "slow": loop(prompt="{commit}", triggers=[{"git": "main"}], when=slow_when(tmp_path)),
        "docs": loop(prompt="{commit}", triggers=[{"git": "main"}]),
        "also": loop(prompt="{commit}", triggers=[{"git": "main"}]),
    }
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        tip = commit(root, "b")
        for name in ("docs", "also"):  # both, while the slow loop's `when` still waits
            (firing,) = await until(lambda name=name: r.firings(name), bool)
            assert firing.payload["commit"]["sha"] == tip
            assert (await r.settled(firing.id)).outcome is Outcome.STARTED
        (slow,) = await r.firings("slow")
        assert slow.outcome is Outcome.PENDING
        (tmp_path / "go").write_text("go")
        assert (await r.settled(slow.id)).outcome is Outcome.STARTED


async def test_two_reloads_in_a_row_leave_one_set_of_watchers(tmp_path: Path) -> None:
    loops = {"docs": loop(prompt="{commit}", triggers=[{"git": "main"}, {"watch": ["src/**"]}])}
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        config = r.engine.config
        assert config is not None
        edited = load_config(config.path)  # the same, but told apart by the watchers
        r.scheduler.watchers.watching = ()  # type: ignore[attr-defined]
        r.engine.reconfigure(edited)
        r.scheduler.reconfigure()
        r.scheduler.reconfigure()
        await r.scheduler.idle()
        await ready(r)
        names = sorted(
            t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("watch-")
        )
        assert names == ["watch-files", "watch-git"]
        tip = commit(root, "b")
        (firing,) = await fired(r)
        assert firing.payload["commit"]["sha"] == tip
        await r.settled(firing.id)
        assert len(await r.firings("docs")) == 1


async def test_a_branch_moved_back_is_no_new_commit(tmp_path: Path) -> None:
    loops = {"docs": loop(prompt="{commit}", triggers=[{"git": "main"}])}
    async with rig(tmp_path, loops, files=FILES, clock=SystemClock()) as r:
        root = await ready(r)
        commit(root, "b")
        (firing,) = await fired(r)
        await r.settled(firing.id)
        git(root, "reset", "-q", "--hard", "HEAD~1")
        back = git(root, "rev-parse", "HEAD").strip()
        await until(
            lambda: r.engine.store.schedule_entry("docs", "git"),
            lambda entry: entry.last_tip == back,
        )
        assert len(await r.firings("docs")) == 1
        tip = commit(root, "c")  # a new commit on top of where it went back to fires
        _, second = await fired(r, 2)
        assert second.payload["commit"]["sha"] == tip
