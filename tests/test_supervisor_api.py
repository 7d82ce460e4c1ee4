"""The engine's API, tested the same way against both implementations of `Supervisor`: the
engine in this process (`Engine`) and a client of the repository's service over its socket
(`RemoteSupervisor`). Every test uses only the `Supervisor` interface, and runs twice."""

from __future__ import annotations

import asyncio
import contextlib
import re
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import cli_env, git, make_repo
from looptui.client.api import Supervisor
from looptui.client.connect import open_supervisor
from looptui.engine.config import CONFIG_NAME, load_config
from looptui.engine.errors import ConfigError, LooptuiError, MergeRefused, RunNotFound
from looptui.engine.models import NoteKind, Run, RunStatus
from looptui.engine.store.feed import Feed
from looptui.engine.supervisor import Engine
from looptui.protocol.events import (
    CheckRan,
    Event,
    EventKind,
    IterationMarked,
    NoteAdded,
    OutputPrinted,
    StatusChanged,
    VerdictGiven,
)

MODES = ["in-process", "service"]
WAIT = 60.0  # seconds before a test waiting on an event gives up

# A quick agent: it prints its prompt, waits for a release file when given one, and writes
# out.txt (what the loops' checks look for). With PIDS set, it first appends its pid there:
# one line per turn.
AGENT = textwrap.dedent(
    """\
    import os, pathlib, sys, time
    if "PIDS" in os.environ:
        with open(os.environ["PIDS"], "a") as pids:
            print(os.getpid(), file=pids)
    for line in pathlib.Path(sys.argv[1]).read_text().splitlines():
        print("prompt:", line, flush=True)
    if len(sys.argv) > 2:
        pathlib.Path("partial.txt").write_text("started\\n")
        release = pathlib.Path(sys.argv[2])
        print("waiting for", release.name, flush=True)
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    iteration = os.environ["LOOPTUI_ITERATION"]
    out = os.environ.get("OUT", "out.txt")
    pathlib.Path(out).write_text(f"hello from iteration {iteration}\\n")
    print("wrote", out, flush=True)
    """
)
GOAL = "Write out.txt."
CHATTY_LINES = 3000


def api_config(release: Path) -> dict[str, Any]:
    """Loops of a few seconds: `write` succeeds at once, `gated` waits for `release` first,
    `never` (writing other.txt) cannot succeed."""
    return {
        "agents": {
            "writer": {"kind": "command", "command": ["python", "tools/agent.py", "{prompt_file}"]},
            "other": {
                "kind": "command",
                "command": ["python", "tools/agent.py", "{prompt_file}"],
                "env": {"OUT": "other.txt"},
            },
            "chatty": {
                "kind": "command",
                "command": [
                    "python",
                    "-c",
                    f"for i in range({CHATTY_LINES}): print('line', i)\n"
                    "open('out.txt', 'w').write('done')",
                ],
            },
            "gated": {
                "kind": "command",
                "command": ["python", "tools/agent.py", "{prompt_file}", str(release)],
                "env": {"PIDS": str(agent_pids(release))},
            },
        },
        "loops": {
            "write": {
                "prompt": GOAL,
                "agent": "writer",
                "checks": [{"name": "out", "run": "test -f out.txt"}],
                "max_iterations": 2,
            },
            "gated": {
                "prompt": GOAL,
                "agent": "gated",
                "checks": [{"name": "out", "run": "test -f out.txt"}],
                "max_iterations": 2,
            },
            "chatty": {
                "prompt": GOAL,
                "agent": "chatty",
                "checks": [{"name": "out", "run": "test -f out.txt"}],
                "max_iterations": 1,
            },
            "never": {
                "prompt": GOAL,
                "agent": "other",
                "checks": [{"name": "missing", "run": "test -f missing.txt"}],
                "max_iterations": 1,
            },
        },
    }


def agent_pids(release: Path) -> Path:
    """Where each turn of the `gated` agent appends its pid."""
    return release.with_name("agent-pids")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """Created by a test to let the `gated` agent go on."""
    return tmp_path / "release"


@pytest.fixture
def api_repo(tmp_path: Path, release: Path) -> Path:
    files = {"README.md": "a repository\n", "tools/agent.py": AGENT}
    return make_repo(tmp_path / "repo", files, api_config(release))


async def open_mode(mode: str, root: Path) -> Supervisor:
    config = load_config(root / CONFIG_NAME)
    if mode == "in-process":
        return await Engine.open(root, cli_env(), config)
    return await open_supervisor(root, cli_env(), config, service=True)


@pytest.fixture(params=MODES)
async def supervisor(request: pytest.FixtureRequest, api_repo: Path) -> AsyncIterator[Supervisor]:
    """The repository's `Supervisor`, in this process or through its service."""
    if request.param == "service":
        request.getfixturevalue("service")  # SIGKILLs the service when the test ends
    opened = await open_mode(request.param, api_repo)
    try:
        yield opened
    finally:
        await opened.close()


async def collect(feed: Feed, until: Callable[[Event], bool]) -> list[Event]:
    """Events from `feed` up to and including the first for which `until` is true."""
    seen: list[Event] = []
    async with asyncio.timeout(WAIT):
        while (batch := await feed.next_batch()) is not None:
            for event in batch:
                seen.append(event)
                if until(event):
                    return seen
    raise AssertionError(f"the feed ended before the event awaited; it gave {seen}")


async def collect_from(
    supervisor: Supervisor, run_id: str, after: int, until: Callable[[Event], bool]
) -> list[Event]:
    """`collect` over a subscription of its own to the run, from `after`, closed after."""
    feed = supervisor.subscribe(run_id, after=after)
    try:
        return await collect(feed, until)
    finally:
        feed.close()


def ended(event: Event) -> bool:
    return isinstance(event.payload, StatusChanged) and not event.payload.status.is_active


def says(text: str) -> Callable[[Event], bool]:
    return lambda event: isinstance(event.payload, OutputPrinted) and text in event.payload.line


def ids(events: list[Event]) -> list[int]:
    return [event.id or 0 for event in events]


async def finished(supervisor: Supervisor, loop: str) -> Run:
    run = await supervisor.start_run(loop)
    async with asyncio.timeout(WAIT):
        return await supervisor.wait(run.id)


async def test_a_run_succeeds_and_its_events_come_typed_and_in_order(
    supervisor: Supervisor,
) -> None:
    run = await supervisor.start_run("write")
    assert run.status is RunStatus.QUEUED and run.loop == "write"
    async with asyncio.timeout(WAIT):
        final = await supervisor.wait(run.id)
    assert final.status is RunStatus.SUCCEEDED and final.iterations == 1
    events = await supervisor.history.events(run.id)
    assert ids(events) == sorted(set(ids(events)))
    assert all(event.run_id == run.id for event in events)
    payloads = [event.payload for event in events]
    statuses = [p.status for p in payloads if isinstance(p, StatusChanged)]
    assert statuses[0] is RunStatus.QUEUED and statuses[-1] is RunStatus.SUCCEEDED
    assert RunStatus.RUNNING in statuses
    marks = [p.phase for p in payloads if isinstance(p, IterationMarked)]
    assert marks == ["started", "finished"]
    checks = [p for p in payloads if isinstance(p, CheckRan)]
    assert [c.name for c in checks] == ["out", "out (clean checkout)"]  # the worktree, the gate
    assert all(c.passed and c.exit_code == 0 and c.command == "test -f out.txt" for c in checks)
    verdicts = [p for p in payloads if isinstance(p, VerdictGiven)]
    assert [v.done for v in verdicts] == [True]
    lines = [p.line for p in payloads if isinstance(p, OutputPrinted)]
    assert "wrote out.txt" in lines and f"prompt: {GOAL}" in lines

    def first(kind: type) -> int:
        return next(i for i, p in enumerate(payloads) if isinstance(p, kind))

    # started, the agent said something, the checks ran, a verdict, then the final status
    assert first(IterationMarked) < first(OutputPrinted) < first(CheckRan) < first(VerdictGiven)
    assert first(VerdictGiven) < len(payloads) - 1 and ended(events[-1])
    assert {event.kind for event in events} >= {
        EventKind.STATUS,
        EventKind.ITERATION,
        EventKind.OUTPUT,
        EventKind.CHECK,
        EventKind.VERDICT,
    }


async def test_subscribers_get_history_after_their_cursor_then_live_events(
    supervisor: Supervisor, release: Path
) -> None:
    run = await supervisor.start_run("gated")
    everything = supervisor.subscribe(run.id, after=0)
    try:
        early = await collect(everything, says("waiting for"))
        assert len(early) >= 3
        # the run waits for its release, so nothing is written while the others subscribe
        middle = early[len(early) // 2].id
        assert middle is not None
        before = await supervisor.history.last_event_id()
        late = supervisor.subscribe(run.id, after=middle)
        live = supervisor.subscribe(run.id)
        try:
            caught_up = await collect(late, lambda event: event.id == early[-1].id)
            assert caught_up == early[len(early) // 2 + 1 :]  # exactly what came after it
            # a round trip, so that the live-only subscription is open before the release
            await supervisor.history.last_event_id()
            await asyncio.to_thread(release.touch)
            rest = await collect(late, ended)
            tail = await collect(live, ended)
        finally:
            late.close()
            live.close()
        await collect(everything, ended)
    finally:
        everything.close()
    stored = await supervisor.history.events(run.id)
    assert ended(stored[-1])
    after_middle = [event for event in stored if (event.id or 0) > middle]
    assert caught_up + rest == after_middle  # no gap and no duplicate
    assert ids(caught_up + rest) == sorted(set(ids(after_middle)))
    # the live-only subscriber saw none of the past, and everything after it
    assert tail == [event for event in stored if (event.id or 0) > before]
    assert any(says("wrote out.txt")(event) for event in tail)


async def test_a_feed_of_the_newest_lines_keeps_every_other_event_and_each_runs_last_line(
    supervisor: Supervisor,
) -> None:
    run = await finished(supervisor, "chatty")
    assert run.status is RunStatus.SUCCEEDED
    stored = await supervisor.history.events(run.id)
    lines = [event for event in stored if isinstance(event.payload, OutputPrinted)]
    assert len([e for e in lines if e.payload.line.startswith("line ")]) == CHATTY_LINES
    live = supervisor.subscribe(after=0, lines="newest")  # all runs, from the start
    try:
        newest = await collect(live, lambda event: event.id == stored[-1].id)
    finally:
        live.close()
    mine = [event for event in newest if event.run_id == run.id]
    # every event but output lines, all in order; of the lines, a few, the last among them
    others = [event for event in stored if not isinstance(event.payload, OutputPrinted)]
    assert [e for e in mine if not isinstance(e.payload, OutputPrinted)] == others
    kept = [event for event in mine if isinstance(event.payload, OutputPrinted)]
    assert kept and kept[-1] == lines[-1]
    assert set(ids(kept)) <= set(ids(lines)) and len(kept) < len(lines) // 10
    every = supervisor.subscribe(run.id, after=0)  # the default: every line
    try:
        assert await collect(every, lambda event: event.id == stored[-1].id) == stored
    finally:
        every.close()


async def test_stop_keeps_the_worktree_and_resume_finishes_the_run(
    supervisor: Supervisor, release: Path
) -> None:
    run = await supervisor.start_run("gated")
    await collect_from(supervisor, run.id, 0, says("waiting for"))
    stopped = await supervisor.stop(run.id[:5])
    assert stopped.id == run.id and stopped.status is RunStatus.CANCELLED
    worktree = Path(stopped.worktree)
    assert (worktree / "partial.txt").read_text() == "started\n"
    assert (await supervisor.history.run(run.id)).status is RunStatus.CANCELLED
    assert run.id not in await supervisor.active_runs()

    await asyncio.to_thread(release.touch)
    resumed = await supervisor.resume(run.id)
    assert resumed.status is RunStatus.QUEUED and resumed.worktree == stopped.worktree
    async with asyncio.timeout(WAIT):
        final = await supervisor.wait(run.id)
    assert final.status is RunStatus.SUCCEEDED and final.worktree == stopped.worktree
    assert (worktree / "partial.txt").is_file() and (worktree / "out.txt").is_file()
    statuses = [
        event.payload.status
        for event in await supervisor.history.events(run.id, kinds=[EventKind.STATUS])
        if isinstance(event.payload, StatusChanged)
    ]
    assert RunStatus.CANCELLED in statuses and statuses[-1] is RunStatus.SUCCEEDED


async def test_feedback_continues_a_succeeded_run_and_leads_its_next_prompt(
    supervisor: Supervisor,
) -> None:
    first = await finished(supervisor, "write")
    assert first.status is RunStatus.SUCCEEDED and first.max_iterations == 2
    text = "Say hello in French too."
    again = await supervisor.feedback(first.id, text)
    assert again.status is RunStatus.QUEUED and again.max_iterations == first.iterations + 2
    async with asyncio.timeout(WAIT):
        final = await supervisor.wait(first.id)
    assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
    notes = await supervisor.history.notes(first.id)
    feedback = [note for note in notes if note.kind is NoteKind.FEEDBACK]
    assert [(note.text, note.iteration) for note in feedback] == [(text, 1)]
    events = await supervisor.history.events(first.id)
    assert any(isinstance(e.payload, NoteAdded) and e.payload.text == text for e in events)

    def prompt(iteration: int) -> list[str]:
        return [
            e.payload.line.removeprefix("prompt: ")
            for e in events
            if e.iteration == iteration
            and isinstance(e.payload, OutputPrinted)
            and e.payload.line.startswith("prompt:")
        ]

    assert not any(text in line for line in prompt(1))
    second = prompt(2)
    assert second[0].startswith("## Feedback from")  # the human's word leads the prompt
    assert GOAL in second
    heading = next(i for i, line in enumerate(second) if line.startswith("## Feedback from"))
    assert second[heading + 1] == f"- {text}"
    assert "address it first" in second[heading]


async def test_diff_preview_and_merge_land_the_change_and_refuse_a_run_not_done(
    supervisor: Supervisor, api_repo: Path
) -> None:
    done = await finished(supervisor, "write")
    assert done.status is RunStatus.SUCCEEDED
    diff = await supervisor.diff(done.id)
    assert "+hello from iteration 1" in diff and "out.txt" in diff
    patch = await supervisor.patch(done.id)
    assert "out.txt" in {file.path for file in patch.files}
    assert await supervisor.patch(done.id, "last") == patch  # one iteration: the same diff
    plan = await supervisor.preview(done.id)
    assert plan.gate.allowed and plan.nothing is None
    assert plan.preview.clean and "out.txt" in plan.preview.changed_files
    assert not (api_repo / "out.txt").exists()  # a preview changes nothing

    failed = await finished(supervisor, "never")
    assert failed.status is not RunStatus.SUCCEEDED
    gate = await supervisor.merge_gate(failed)
    assert not gate.allowed
    with pytest.raises(MergeRefused) as refused:
        await supervisor.merge(failed.id)
    assert type(refused.value) is MergeRefused and str(refused.value) == gate.refusal
    assert (await supervisor.history.run(failed.id)).status is failed.status

    commit = await supervisor.merge(done.id)
    assert git(api_repo, "rev-parse", "main").strip() == commit
    assert (api_repo / "out.txt").read_text() == "hello from iteration 1\n"
    merged = await supervisor.history.run(done.id)
    assert merged.status is RunStatus.MERGED and not Path(merged.worktree).exists()

    # forced, the run that is not done lands too
    await supervisor.merge(failed.id, squash=True, force=True)
    assert (await supervisor.history.run(failed.id)).status is RunStatus.MERGED
    assert (api_repo / "other.txt").read_text() == "hello from iteration 1\n"
    assert git(api_repo, "status", "--porcelain") == ""


async def test_discard_removes_the_branch_and_the_worktree(
    supervisor: Supervisor, api_repo: Path
) -> None:
    run = await finished(supervisor, "write")
    assert Path(run.worktree).is_dir() and git(api_repo, "branch", "--list", run.branch)
    with pytest.raises(LooptuiError, match="holds work not merged"):
        await supervisor.discard(run.id)
    assert Path(run.worktree).is_dir()
    await supervisor.discard(run.id, force=True)
    assert not Path(run.worktree).exists()
    assert git(api_repo, "branch", "--list", run.branch).strip() == ""
    assert (await supervisor.history.run(run.id)).status is RunStatus.DISCARDED
    assert not (api_repo / "out.txt").exists()


async def test_every_history_query_answers_the_same_in_both_modes(
    supervisor: Supervisor, api_repo: Path, service: None
) -> None:
    done = await finished(supervisor, "write")
    await supervisor.feedback(done.id, "Once more.")
    async with asyncio.timeout(WAIT):
        await supervisor.wait(done.id)
    failed = await finished(supervisor, "never")
    # the other implementation, over the same repository
    other = await open_mode("service" if supervisor.service is None else "in-process", api_repo)
    try:
        one, two = supervisor.history, other.history
        assert await one.runs() == await two.runs()
        assert len(await one.runs()) == 2
        assert await one.runs([RunStatus.SUCCEEDED]) == await two.runs([RunStatus.SUCCEEDED])
        assert await one.last_event_id() == await two.last_event_id()
        for run_id in (done.id, failed.id):
            assert await one.run(run_id) == await two.run(run_id)
            assert await one.find_run(run_id[:4]) == await two.find_run(run_id[:4])
            events = await one.events(run_id)
            assert events and events == await two.events(run_id)
            middle = events[len(events) // 2].id or 0
            assert await one.events(run_id, middle, 3) == await two.events(run_id, middle, 3)
            kinds = [EventKind.CHECK, EventKind.VERDICT]
            assert await one.events(run_id, kinds=kinds) == await two.events(run_id, kinds=kinds)
            assert await one.events_since(middle, run_id) == await two.events_since(middle, run_id)
            assert await one.events_page(run_id, 0, 5) == await two.events_page(run_id, 0, 5)
            assert await one.iterations(run_id) == await two.iterations(run_id)
            assert await one.check_results(run_id) == await two.check_results(run_id)
            assert await one.verdicts(run_id) == await two.verdicts(run_id)
            assert await one.notes(run_id) == await two.notes(run_id)
        assert await one.events_since(0) == await two.events_since(0)
        assert await one.events_since(0, limit=4) == await two.events_since(0, limit=4)
        found = await one.search("wrote out")
        assert found and found == await two.search("wrote out")
        assert await one.search("wrote", limit=1) == await two.search("wrote", limit=1)
        one_run = await one.search("wrote", run=done.id[:6], loop=done.loop)
        assert one_run and one_run == await two.search("wrote", run=done.id[:6], loop=done.loop)
        assert {hit.run_id for hit in one_run} == {done.id}
        lines = await one.latest_lines([EventKind.OUTPUT])
        assert set(lines) == {done.id, failed.id}
        assert lines == await two.latest_lines([EventKind.OUTPUT])
        latest = await one.latest_verdicts()
        assert set(latest) == {done.id, failed.id} and latest == await two.latest_verdicts()
        assert len(await one.iterations(done.id)) == 2
        assert [n.text for n in await one.notes(done.id) if n.kind is NoteKind.FEEDBACK] == [
            "Once more."
        ]
        assert len(await one.check_results(failed.id)) >= 1
    finally:
        await other.close()


async def test_errors_arrive_as_the_same_class_and_line(
    supervisor: Supervisor, api_repo: Path
) -> None:
    run = await finished(supervisor, "write")
    with pytest.raises(RunNotFound) as unknown:
        await supervisor.stop("ffffffffff")
    with pytest.raises(RunNotFound) as unknown_history:
        await supervisor.history.find_run("ffffffffff")
    with pytest.raises(ConfigError) as no_loop:
        await supervisor.start_run("no-such-loop")
    with pytest.raises(LooptuiError) as not_going:
        await supervisor.stop(run.id)
    with pytest.raises(LooptuiError) as empty:
        await supervisor.feedback(run.id, "  ")
    raised = [unknown, unknown_history, no_loop, not_going, empty]
    assert type(not_going.value) is LooptuiError and type(empty.value) is LooptuiError
    assert type(no_loop.value) is ConfigError and type(unknown.value) is RunNotFound
    assert all("\n" not in str(info.value) and str(info.value) for info in raised)
    assert f"run {run.id} is not going: it is succeeded" == str(not_going.value)
    assert "no-such-loop" in str(no_loop.value)
    # the very line the engine itself words
    engine = await Engine.open(api_repo, cli_env(), load_config(api_repo / CONFIG_NAME))
    try:
        calls: list[Callable[[Supervisor], Awaitable[object]]] = [
            lambda s: s.stop("ffffffffff"),
            lambda s: s.history.find_run("ffffffffff"),
            lambda s: s.start_run("no-such-loop"),
            lambda s: s.stop(run.id),
            lambda s: s.feedback(run.id, "  "),
        ]
        for call, info in zip(calls, raised, strict=True):
            with pytest.raises(LooptuiError) as there:
                await call(engine)
            assert (type(there.value), str(there.value)) == (type(info.value), str(info.value))
    finally:
        await engine.close()


# -- one continuation at a time ------------------------------------------------------------


@contextlib.asynccontextmanager
async def second_client(supervisor: Supervisor, root: Path) -> AsyncIterator[Supervisor]:
    """Another client of the same runs: a second connection to the service, or the same
    engine (whose calls race in this one process)."""
    if supervisor.service is None:
        yield supervisor
        return
    other = await open_mode("service", root)
    try:
        yield other
    finally:
        await other.close()


def turns(release: Path) -> list[int]:
    """The pids of the `gated` agent's turns so far, one per turn."""
    path = agent_pids(release)
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def processes_in(worktree: Path) -> list[psutil.Process]:
    """Live processes working in `worktree` (agents, checks)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and Path(process.cwd()).is_relative_to(
                worktree
            ):
                found.append(process)
    return found


def one_of(outcomes: Sequence[Run | BaseException], run_id: str) -> Run:
    """The one continuation that went; every other was refused, either as one already
    going (it came while the first was being set up) or because the run is running (it
    came once the first had started it: over a socket, either order can happen)."""
    [went] = [outcome for outcome in outcomes if isinstance(outcome, Run)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert refused and len(refused) == len(outcomes) - 1, outcomes
    assert all(type(error) is LooptuiError for error in refused), refused
    going = re.compile(
        rf"run {run_id} is (already going|(still )?(queued|running)[;,] .*)", re.DOTALL
    )
    for error in refused:
        assert going.fullmatch(str(error)), error
    assert went.id == run_id and went.status is RunStatus.QUEUED
    return went


async def stop_the_one_turn(supervisor: Supervisor, run: Run, after: int, release: Path) -> None:
    """The continued run's agent is waiting (its feed after `after` says so), queued once:
    the refused continuations left no trace. Once stopped, the run stays cancelled and
    nothing drives it."""
    events = await collect_from(supervisor, run.id, after, says("waiting for"))
    statuses = [e.payload.status for e in events if isinstance(e.payload, StatusChanged)]
    assert statuses == [RunStatus.QUEUED, RunStatus.RUNNING], statuses
    before = len(turns(release))
    assert await supervisor.active_runs() == [run.id]
    stopped = await supervisor.stop(run.id)
    assert stopped.status is RunStatus.CANCELLED
    assert await supervisor.active_runs() == []
    assert processes_in(Path(run.worktree)) == []
    assert len(turns(release)) == before
    # a second driver would go on once released: let a whole run go through meanwhile
    await asyncio.to_thread(release.touch)
    assert (await finished(supervisor, "write")).status is RunStatus.SUCCEEDED
    assert (await supervisor.history.run(run.id)).status is RunStatus.CANCELLED
    assert await supervisor.active_runs() == []
    assert len(turns(release)) == before


@pytest.mark.parametrize("second", ["resume", "feedback"])
async def test_a_resume_at_once_with_another_continuation_puts_one_agent_in_the_worktree(
    supervisor: Supervisor, api_repo: Path, release: Path, second: str
) -> None:
    run = await supervisor.start_run("gated")
    await collect_from(supervisor, run.id, 0, says("waiting for"))
    assert (await supervisor.stop(run.id)).status is RunStatus.CANCELLED
    assert len(turns(release)) == 1
    after = await supervisor.history.last_event_id()
    async with second_client(supervisor, api_repo) as other:
        again = other.resume(run.id) if second == "resume" else other.feedback(run.id, "Go on.")
        outcomes = await asyncio.gather(supervisor.resume(run.id), again, return_exceptions=True)
    one_of(outcomes, run.id)
    await stop_the_one_turn(supervisor, run, after, release)
    assert len(turns(release)) == 2  # the first turn, and the one continuation's


async def test_a_finished_run_takes_one_feedback_at_a_time(
    supervisor: Supervisor, api_repo: Path, release: Path
) -> None:
    await asyncio.to_thread(release.touch)
    done = await finished(supervisor, "gated")
    assert done.status is RunStatus.SUCCEEDED and len(turns(release)) == 1
    await asyncio.to_thread(release.unlink)  # the next turn waits
    after = await supervisor.history.last_event_id()
    async with second_client(supervisor, api_repo) as other:
        outcomes = await asyncio.gather(
            supervisor.feedback(done.id, "One."),
            other.feedback(done.id, "Two."),
            supervisor.resume(done.id),  # refused too: a finished run takes feedback
            return_exceptions=True,
        )
    went = one_of(outcomes, done.id)
    assert went.max_iterations == done.iterations + 2
    feedback = [n for n in await supervisor.history.notes(done.id) if n.kind is NoteKind.FEEDBACK]
    assert len(feedback) == 1 and feedback[0].text in {"One.", "Two."}
    await stop_the_one_turn(supervisor, went, after, release)
    assert len(turns(release)) == 2
