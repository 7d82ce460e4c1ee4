"""The API agents' tools: confined to the worktree, bounded, and never raising at the model."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from looptui.engine.agents.tools import TOOLS, Toolbox
from process_support import wait_for_exit


@pytest.fixture
def box(tmp_path: Path) -> Toolbox:
    worktree = tmp_path / "wt"
    (worktree / "src").mkdir(parents=True)
    (worktree / "src/app.py").write_text("def add(a, b):\n    return a - b\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret\n")
    os.symlink(outside, worktree / "linkdir")  # a directory link that leads out
    os.symlink(outside / "secret.txt", worktree / "link.txt")  # a file link that leads out
    os.symlink(outside / "new.txt", worktree / "dangling.txt")  # a link to create a file out
    os.symlink("../link.txt", worktree / "src/chain.txt")  # a link to a link that leads out
    os.symlink("app.py", worktree / "src/alias.py")  # a link that stays inside
    return Toolbox(worktree, dict(os.environ), command_timeout=2, output_cap=200)


ESCAPES = [
    "../outside/secret.txt",
    "src/../../outside/secret.txt",
    str(Path("/etc/passwd")),
    "~/x",
    "linkdir",
    "linkdir/secret.txt",
    "linkdir/new.txt",
    "link.txt",
    "src/chain.txt",
    "dangling.txt",
    ".git/config",
]


def arguments(tool: str, path: str) -> dict[str, Any]:
    return {
        "list_files": {"path": path},
        "read_file": {"path": path},
        "search": {"pattern": "secret", "path": path},
        "write_file": {"path": path, "content": "pwned"},
        "edit_file": {"path": path, "old": "outside", "new": "pwned"},
    }[tool]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.parametrize("tool", ["list_files", "read_file", "search", "write_file", "edit_file"])
async def test_no_file_tool_reaches_outside_the_worktree(
    box: Toolbox, tmp_path: Path, tool: str, path: str
) -> None:
    output, failed = await box.call(tool, arguments(tool, path))
    assert failed, output
    assert "outside secret" not in output and "root:" not in output
    assert (tmp_path / "outside/secret.txt").read_text() == "outside secret\n"
    assert not (tmp_path / "outside/new.txt").exists()


async def test_writing_through_a_dangling_link_is_refused(box: Toolbox, tmp_path: Path) -> None:
    output, failed = await box.call("write_file", {"path": "dangling.txt", "content": "x"})
    assert failed and "symlink" in output
    assert not (tmp_path / "outside/new.txt").exists()


async def test_listing_and_searching_the_whole_tree_never_follow_links_out(box: Toolbox) -> None:
    listed, failed = await box.call("list_files", {})
    assert not failed and "src/app.py" in listed and "secret.txt" not in listed
    found, failed = await box.call("search", {"pattern": "secret|return"})
    assert not failed and "src/app.py:2:" in found and "outside" not in found


async def test_a_link_that_stays_inside_is_followed(box: Toolbox) -> None:
    text, failed = await box.call("read_file", {"path": "src/alias.py"})
    assert not failed and "return a - b" in text
    _, failed = await box.call("edit_file", {"path": "src/alias.py", "old": "-", "new": "*"})
    assert not failed and "a * b" in (box.worktree / "src/app.py").read_text()
    assert (box.worktree / "src/alias.py").is_symlink()


async def test_the_tools_work_inside(box: Toolbox) -> None:
    assert await box.call("edit_file", {"path": "src/app.py", "old": "a - b", "new": "a + b"}) == (
        "edited src/app.py",
        False,
    )
    text, failed = await box.call("read_file", {"path": "src/app.py", "offset": 2, "limit": 1})
    assert not failed and text == "     2\t    return a + b"
    _, failed = await box.call("write_file", {"path": "pkg/new.py", "content": "x = 1\n"})
    assert not failed and (box.worktree / "pkg/new.py").read_text() == "x = 1\n"
    again, failed = await box.call("edit_file", {"path": "pkg/new.py", "old": "y", "new": "z"})
    assert failed and "occurs 0 times" in again


async def test_bad_calls_are_error_results_not_exceptions(box: Toolbox) -> None:
    for name, args in [
        ("no_such_tool", {}),
        ("read_file", {}),
        ("read_file", {"path": "src"}),
        ("read_file", {"path": "src/app.py", "offset": "two"}),
        ("search", {"pattern": "("}),
        ("write_file", {"path": "a.txt", "content": 3}),
        ("run_command", {"command": ""}),
    ]:
        output, failed = await box.call(name, args)
        assert failed and output, (name, args)


async def test_commands_run_in_the_worktree_with_its_environment(box: Toolbox) -> None:
    output, failed = await box.call("run_command", {"command": "pwd; echo $LOOPTUI_WORKTREE"})
    assert not failed
    assert output.splitlines() == [str(box.worktree)] * 2
    output, failed = await box.call("run_command", {"command": "echo nope >&2; exit 3"})
    assert failed and "exit status 3" in output and "nope" in output


async def test_a_command_is_capped_and_killed_with_its_children_on_timeout(
    box: Toolbox, tmp_path: Path
) -> None:
    output, failed = await box.call("run_command", {"command": "seq 1 100000"})
    assert not failed and len(output) < 300 and "more characters cut" in output
    marker = tmp_path / "child-survived"
    started = time.monotonic()
    output, failed = await box.call(
        "run_command", {"command": f"(sleep 4; touch {marker}) & echo started; sleep 60"}
    )
    assert failed and "timed out after 2s" in output and "started" in output
    assert time.monotonic() - started < 10
    time.sleep(4.5)
    assert not marker.exists()  # the background child died with the command's group


async def test_a_command_reads_no_input(box: Toolbox) -> None:
    started = time.monotonic()
    output, failed = await box.call("run_command", {"command": "cat; read line; echo rc=$?"})
    assert not failed and output.strip() == "rc=1"  # end of input at once: a closed stdin
    assert time.monotonic() - started < 1.5


async def test_a_cancelled_command_dies_with_its_children(box: Toolbox, tmp_path: Path) -> None:
    marker, started = tmp_path / "child-survived", tmp_path / "started"
    os.mkfifo(started)  # the command says its child's pid through it: an event to await
    command = f"(sleep 20; touch {marker}) & echo $! > {started}; sleep 60"
    call = asyncio.create_task(box.call("run_command", {"command": command}))
    child = int(await asyncio.wait_for(asyncio.to_thread(started.read_text), 10))
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # left alone, the child would live 20 s and then leave its marker: that it ends within
    # 10 s, without one, is the proof (a loaded machine may take seconds to deliver the kill,
    # so the child's own life is kept well beyond that)
    assert await wait_for_exit(child, 10), "the background child outlived the cancel"
    assert not marker.exists(), "the background child lived on after the cancel"


async def test_a_command_cancelled_while_it_starts_dies_with_its_children(
    box: Toolbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child runs before asyncio has connected its pipes. A cancel in that moment once
    had asyncio kill the shell alone, and what it started lived on; here the start is held
    open (as a loaded machine holds it) until the cancel has come."""
    marker, started = tmp_path / "child-survived", tmp_path / "started"
    os.mkfifo(started)
    real_start, release = asyncio.create_subprocess_exec, asyncio.Event()

    async def slow_start(*argv: Any, **options: Any) -> asyncio.subprocess.Process:
        process = await real_start(*argv, **options)
        await release.wait()
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", slow_start)
    command = f"(sleep 20; touch {marker}) & echo $! > {started}; sleep 60"
    call = asyncio.create_task(box.call("run_command", {"command": command}))
    child = int(await asyncio.wait_for(asyncio.to_thread(started.read_text), 10))
    call.cancel()  # reaches the start first: the loop runs its wakeups in the order made
    release.set()  # then the start completes
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await wait_for_exit(child, 10), "the background child outlived the cancel"
    assert not marker.exists()


def test_every_tool_has_a_schema() -> None:
    assert {tool.name for tool in TOOLS} == {
        "list_files",
        "read_file",
        "search",
        "write_file",
        "edit_file",
        "run_command",
    }
    for tool in TOOLS:
        assert tool.parameters["type"] == "object" and tool.description


async def test_a_fifo_or_a_backtracking_pattern_cannot_hang_the_tools(box: Toolbox) -> None:
    os.mkfifo(box.worktree / "pipe")  # as a model could, through its shell
    started = time.monotonic()
    found, failed = await box.call("search", {"pattern": "return"})
    assert not failed and "src/app.py:2:" in found and "pipe" not in found
    for name, args in [
        ("read_file", {"path": "pipe"}),
        ("write_file", {"path": "pipe", "content": "x"}),
        ("edit_file", {"path": "pipe", "old": "a", "new": "b"}),
    ]:
        output, failed = await box.call(name, args)
        assert failed and "not" in output, (name, output)
    (box.worktree / "slow.txt").write_text("a" * 40 + "!\n")
    output, failed = await box.call("search", {"pattern": "(a+)+$"})
    assert failed and "longer than 2s" in output
    assert time.monotonic() - started < 10


async def test_gits_own_files_are_out_of_reach_through_a_link_too(box: Toolbox) -> None:
    (box.worktree / ".git").write_text("gitdir: /somewhere/real\n")
    os.symlink(".git", box.worktree / "g")
    output, failed = await box.call("write_file", {"path": "g", "content": "gitdir: /tmp/evil"})
    assert failed and "git's own files" in output
    assert (box.worktree / ".git").read_text() == "gitdir: /somewhere/real\n"
