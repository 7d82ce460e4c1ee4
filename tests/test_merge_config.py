"""A merge takes looptui.toml as it is on disk now: a service that is already running
rereads it before it previews or merges, as it does before it starts a run, and a config
broken since it started refuses the merge instead of letting the last good one decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BUGGY_PACKAGE, cli_env, git, run_cli
from looptui.client.connect import open_supervisor
from looptui.engine.config import CONFIG_NAME
from looptui.engine.errors import ConfigError, MergeRefused
from test_review_lines import debug_repo

pytestmark = [pytest.mark.usefixtures("service"), pytest.mark.timeout(180)]

UNDECIDED = "1 hunk is undecided and review.require_decisions is set"


def edit_config(repo: Path, review: str) -> None:
    """The repository's looptui.toml, its [review] table now `review` (not committed)."""
    path = repo / CONFIG_NAME
    text = path.read_text().split("\n[review]\n")[0]
    path.write_text(f"{text}\n[review]\n{review}\n")


async def test_a_running_service_merges_under_the_config_as_it_is_now(tmp_path: Path) -> None:
    repo = debug_repo(tmp_path)
    assert run_cli(repo, "run", "fix").code == 0  # through the service, which keeps running
    run_id = json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"]
    main_before = git(repo, "rev-parse", "main")
    # each call straight after its edit, as from the TUI: the service's poll of the file
    # (every few seconds) has not run in between
    supervisor = await open_supervisor(repo, cli_env(), None, start=False)
    try:
        edit_config(repo, 'require_decisions = "yes"')  # broken since the service started
        with pytest.raises(ConfigError, match=r"review\.require_decisions") as broken:
            await supervisor.preview(run_id)
        assert "\n" not in str(broken.value)
        with pytest.raises(ConfigError, match=r"review\.require_decisions"):
            await supervisor.merge(run_id)
        edit_config(repo, "require_decisions = true")
        plan = await supervisor.preview(run_id)
        assert plan.decisions_required and plan.review is not None
        with pytest.raises(MergeRefused, match=UNDECIDED):
            await supervisor.merge(run_id)
    finally:
        await supervisor.close()
    refused = run_cli(repo, "merge", run_id)
    assert refused.code == 2 and refused.stderr.count("\n") == 1, refused
    assert UNDECIDED in refused.stderr
    assert git(repo, "rev-parse", "main") == main_before  # nothing merged
    assert git(repo, "show", "main:shapes/area.py") == BUGGY_PACKAGE["shapes/area.py"]
    (status,) = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["status"] == "succeeded"
    edit_config(repo, "require_decisions = false")
    landed = run_cli(repo, "merge", run_id)
    assert landed.code == 0, landed.stderr
    assert "debug" in git(repo, "show", "main:shapes/area.py")
