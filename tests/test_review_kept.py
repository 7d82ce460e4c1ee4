"""Review decisions kept for a run, read and written through `Supervisor` (in this process
and over the service's socket), as the review screen does and `looptui merge` takes them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import BUGGY_PACKAGE, cli_env, fixer_config, git, make_repo, run_cli
from looptui.client.api import Supervisor
from looptui.client.connect import open_supervisor
from looptui.engine import load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.errors import RunNotFound
from looptui.engine.workspace import Decision, Hunk, Patch, Selection, shown_in
from test_review_lines import FIXED

MODES = ["in-process", "service"]

# The fix with a debugging line in its hunk, and a second file changed on the side.
AGENT = textwrap.dedent(
    """\
    import pathlib
    pathlib.Path("shapes/area.py").write_text(
        "def rectangle(width, height):\\n"
        "    print('debug', width, height)\\n"
        "    return width * height\\n"
    )
    ignore = pathlib.Path(".gitignore")
    ignore.write_text(ignore.read_text() + "*.log\\n")
    """
)
IGNORED = BUGGY_PACKAGE[".gitignore"]


def kept_repo(tmp_path: Path) -> Path:
    """A repository whose `fix` loop fixes `rectangle()` with a debugging line left in and
    adds a line to `.gitignore`: two hunks, one to reject, one to take but for a line."""
    files = {**BUGGY_PACKAGE, "tools/fix.py": AGENT}
    return make_repo(tmp_path / "repo", files, fixer_config())


def hunks(patch: Patch) -> tuple[Hunk, Hunk, int]:
    """The `.gitignore` hunk, the `shapes/area.py` hunk and the index of its debugging line."""
    (ignore,) = next(f for f in patch.files if f.path == ".gitignore").hunks
    (area,) = next(f for f in patch.files if f.path == "shapes/area.py").hunks
    debug = next(i for i, line in enumerate(area.lines) if "debug" in line.text)
    return ignore, area, debug


def finished_run(repo: Path) -> str:
    """A `fix` run, run to its end by the real command; its id."""
    ran = run_cli(repo, "run", "fix")
    assert ran.code == 0, ran.stderr
    return str(json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"])


@pytest.fixture(params=MODES)
async def supervisor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Supervisor]:
    """`kept_repo`'s `Supervisor`, in this process or through its service."""
    if request.param == "service":
        request.getfixturevalue("service")  # SIGKILLs the service when the test ends
    repo = kept_repo(tmp_path)
    config = load_config(repo / CONFIG_NAME)
    opened = await open_supervisor(repo, cli_env(), config, service=request.param == "service")
    try:
        yield opened
    finally:
        await opened.close()


async def test_kept_decisions_go_and_come_back_and_a_merge_lands_exactly_them(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    run = await supervisor.start_run("fix")
    await supervisor.wait(run.id)
    assert await supervisor.review_decisions(run.id) == []
    patch = await supervisor.patch(run.id)
    ignore, area, debug = hunks(patch)
    selection = Selection(patch)
    selection.reject(ignore.key)
    selection.toggle_line(area.key, debug)
    await supervisor.save_review_decisions(run.id, selection.to_data())

    kept = await supervisor.review_decisions(run.id[:6])  # a prefix names the run, as elsewhere
    assert kept == selection.to_data()
    assert {entry.decision for entry in kept} == {Decision.REJECTED, Decision.ACCEPTED}
    again = Selection.from_data(await supervisor.patch(run.id), kept)
    assert again.decision(ignore.key) is Decision.REJECTED
    assert again.rejected_lines(area.key) == {debug}
    plan = await supervisor.preview(run.id)  # no `reject`: the kept decisions say
    assert plan.review is not None and plan.review.decided_hunks == 2
    with pytest.raises(RunNotFound):
        await supervisor.review_decisions("nosuchrun")
    with pytest.raises(RunNotFound):
        await supervisor.save_review_decisions("nosuchrun", kept)

    await supervisor.merge(run.id)
    repo = tmp_path / "repo"
    assert git(repo, "show", "main:shapes/area.py") == FIXED
    assert git(repo, "show", "main:.gitignore") == IGNORED


async def test_saving_none_takes_every_decision_back(supervisor: Supervisor) -> None:
    run = await supervisor.start_run("fix")
    await supervisor.wait(run.id)
    selection = Selection(await supervisor.patch(run.id))
    selection.decide_all(Decision.REJECTED)
    await supervisor.save_review_decisions(run.id, selection.to_data())
    assert len(await supervisor.review_decisions(run.id)) == 2
    await supervisor.save_review_decisions(run.id, [])
    assert await supervisor.review_decisions(run.id) == []
    plan = await supervisor.preview(run.id)
    assert plan.review is not None and plan.review.decided_hunks == 0


async def test_what_review_showed_goes_and_comes_back_and_the_preview_counts_it(
    supervisor: Supervisor,
) -> None:
    run = await supervisor.start_run("fix")
    await supervisor.wait(run.id)
    patch = await supervisor.patch(run.id)
    ignore, area, _ = hunks(patch)
    selection = Selection(patch)
    selection.reject(ignore.key)
    await supervisor.save_review_decisions(run.id, selection.to_data())
    plan = await supervisor.preview(run.id)
    assert plan.review is not None and plan.review.unread_hunks == 1  # area: never shown
    await supervisor.save_review_decisions(run.id, selection.to_data({ignore.key, area.key}))
    kept = await supervisor.review_decisions(run.id)
    assert shown_in(patch, kept) == {ignore.key, area.key}
    assert Selection.from_data(patch, kept).decision(area.key) is Decision.UNDECIDED
    plan = await supervisor.preview(run.id)
    assert plan.review is not None
    assert (plan.review.decided_hunks, plan.review.shown_hunks) == (1, 2)
    assert plan.review.unread_hunks == 0
