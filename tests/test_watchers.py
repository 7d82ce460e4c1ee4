"""The `watch` and `git` triggers, on a real repository with the real watchfiles watcher:
what they fire on, what they ignore, storms, changes made while a run is going, and commits
made outside looptui, also while the service was down."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import git
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
