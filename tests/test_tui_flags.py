"""The app shows why a run is not accepted: an agent that deleted the failing test.

The card, the Verdicts tab, the review screen and the merge dialog each name the flag (the
file and what happened to it), and the merge asks again, naming why, before it lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Static

from conftest import BUGGY_PACKAGE, git, make_repo
from looptui.engine import RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.evidence import VerdictsView
from tui_support import open_app, plain, until, wait_for_runs

CHEAT = "import os\nos.remove('tests/test_area.py')\nprint('all tests pass now')\n"


def cheating_repo(tmp_path: Path) -> Path:
    config: dict[str, Any] = {
        "agents": {"cheat": {"kind": "command", "command": ["python", "tools/cheat.py"]}},
        "loops": {
            "fix": {
                "prompt": "Make the tests pass.",
                "agent": "cheat",
                "checks": [{"name": "tests", "run": "python -m pytest -q -p no:cacheprovider"}],
                "max_iterations": 1,
            }
        },
    }
    files = {
        **BUGGY_PACKAGE,
        "tests/test_other.py": "def test_other():\n    assert True\n",
        "tools/cheat.py": CHEAT,
    }
    return make_repo(tmp_path / "repo", files, config)


async def test_a_deleted_test_is_shown_as_the_reason_on_every_screen(tmp_path: Path) -> None:
    repo = cheating_repo(tmp_path)
    async with open_app(repo, load_config(repo / CONFIG_NAME), tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix")
        await wait_for_runs(app, pilot, [run.id])
        summary = app.board.summaries[run.id]
        assert summary.status is RunStatus.FAILED
        assert summary.verdict is not None and summary.verdict.outcome == "flagged"

        card = "\n".join(strip.text for strip in app.screen.cards._card_lines(0))
        assert "⚑ flagged" in card and "tests/test_area.py" in card

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("3")
        verdicts = app.screen.query_one(VerdictsView)
        await until(pilot, lambda: verdicts.query(".iteration-title"))
        titles = [str(w.render()) for w in verdicts.query(".iteration-title")]
        assert titles[0].startswith("Iteration 1 · verdict: flagged")
        details = [str(w.render()) for w in verdicts.query(".detail")]
        assert any(
            "⚑ flagged tests/test_area.py: tests/test_area.py was deleted" in text
            for text in details
        ), details

        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
        why = plain(app.screen.query_one("#review-verdict", Static).content)
        assert "not proven done" in why and "tests/test_area.py was deleted" in why

        head = git(repo, "rev-parse", "main")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        shown = "\n".join(plain(w.content) for w in dialog.query(Static))
        assert "tests/test_area.py was deleted" in shown
        await pilot.press("y")
        assert dialog.armed and git(repo, "rev-parse", "main") == head  # asked, not merged
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, MergeScreen))
    assert git(repo, "rev-parse", "main") == head
    assert (repo / "tests/test_area.py").exists()
