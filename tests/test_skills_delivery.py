"""Skills reach every agent kind: the API agents see a listing in their prompt and load a skill
through `load_skill`; Claude Code and Codex find it in the worktree for the turn, and it never
shows in the run's diff nor lands with `looptui merge`; a listing over budget says which
descriptions were cut; the evaluator gets the strict reviewer by default.

Everything is real (`looptui run`, the SDKs, the CLIs, git, the store) but the model, which is
the loopback fake server (tests/fake_models.py).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from cli_tools import require_cli
from conftest import git, make_repo, run_cli
from fake_models import FakeModelServer, Say, ToolUse
from looptui.engine.agents.skill_tools import skill_tools
from looptui.engine.agents.tools import TOOLS, Toolbox
from looptui.engine.config import load_config
from looptui.engine.errors import ConfigError
from looptui.engine.skills import check_skills, discover_skills, loop_skills
from looptui.engine.skills.delivery import delivery_for
from looptui.engine.skills.placement import is_placed, place_skills
from looptui.engine.workspace import Repository
from test_agents_e2e import GREETING, agents, model_env, write_hello

SKILL = "greeting-style"
DESCRIPTION = "GREETING-STYLE-DESCRIPTION: how to greet. Use when writing a greeting."
BODY = "Greet warmly. GREETING-STYLE-BODY. See references/words.md for the words."
WORDS = "WORDS-FILE: hello, welcome\n"
SKILL_FILES = {
    f"skills/{SKILL}/SKILL.md": f"---\nname: {SKILL}\ndescription: {DESCRIPTION}\n---\n{BODY}\n",
    f"skills/{SKILL}/references/words.md": WORDS,
}
STRICT = "Review a coding agent's change as looptui's independent evaluator"


def skill_repo(
    tmp_path: Path,
    server: FakeModelServer,
    agent: str,
    files: dict[str, str] | None = None,
    **loop: Any,
) -> Path:
    tools = {name: require_cli(name) for name in ("claude", "codex") if name in agent}
    config = {
        "agents": agents(server, tools),
        "loops": {
            "greet": {
                "prompt": "Write hello.txt with a greeting.",
                "agent": agent,
                "checks": [{"name": "greeted", "run": f"grep -q '{GREETING}' hello.txt"}],
                "max_iterations": 1,
                "iteration_timeout": "2m",
                "skills": [SKILL],
                **loop,
            }
        },
    }
    return make_repo(
        tmp_path / "repo", {"README.md": "hi\n", **SKILL_FILES, **(files or {})}, config
    )


def only_run(repo: Path) -> dict[str, Any]:
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    return run


def stored_prompts(repo: Path) -> list[str]:
    with sqlite3.connect(Repository(repo).store_path) as db:
        return [row[0] for row in db.execute("SELECT prompt FROM iterations ORDER BY number")]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool.get("name") or tool.get("function", {}).get("name") for tool in body["tools"]]


# -- the API agents -------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["anthropic", "openai-responses"])
def test_an_api_agent_is_listed_the_skill_and_loads_it_through_the_tool(
    tmp_path: Path, agent: str
) -> None:
    with FakeModelServer() as server:
        repo = skill_repo(tmp_path, server, agent)
        server.add(
            ToolUse("load_skill", {"name": SKILL}),
            ToolUse("read_skill_file", {"name": SKILL, "path": "../../looptui.toml"}),
            ToolUse("read_skill_file", {"name": SKILL, "path": "references/words.md"}),
            write_hello(agent),
            Say("Greeted."),
        )
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        requests = [r for r in server.requests if r.method == "POST" and r.body]

        first = requests[0].body
        assert first is not None and DESCRIPTION in json.dumps(first)  # listed up front
        assert BODY not in json.dumps(first)  # the body only when loaded
        assert {"load_skill", "read_skill_file"} <= set(tool_names(first))
        assert f'"enum": ["{SKILL}"]' in json.dumps(first["tools"])
        loaded = json.dumps(requests[1].body)
        assert f'<skill_content name=\\"{SKILL}\\">' in loaded and BODY in loaded
        assert "references/words.md" in loaded  # its files are listed, not read
        assert WORDS.strip() not in loaded
        escaped = json.dumps(requests[2].body)
        assert "climbs out" in escaped and "[agents" not in escaped  # looptui.toml unread
        assert WORDS.strip() in json.dumps(requests[3].body)

        [prompt] = stored_prompts(repo)
        assert "## Skills" in prompt and f"- {SKILL}: {DESCRIPTION}" in prompt
        assert only_run(repo)["status"] == "succeeded"


def test_the_skill_tools_refuse_paths_out_of_the_skill(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", SKILL_FILES)
    outside = tmp_path / "secret.txt"
    outside.write_text("SECRET\n")
    (repo / f"skills/{SKILL}/link.md").symlink_to(outside)
    skills = discover_skills(repo, home=tmp_path / "nohome", shipped=None).skills
    toolbox = Toolbox(repo, {}, tools=(*TOOLS, *skill_tools(skills)), skills=skills)

    async def call(path: str) -> tuple[str, bool]:
        return await toolbox.call("read_skill_file", {"name": SKILL, "path": path})

    for path in ("../../README.md", "/etc/passwd", "link.md", "~/x"):
        output, failed = asyncio.run(call(path))
        assert failed and "SECRET" not in output and "root:" not in output, (path, output)
    output, failed = asyncio.run(call("references/words.md"))
    assert not failed and output == WORDS
    output, failed = asyncio.run(toolbox.call("load_skill", {"name": "nope"}))
    assert failed and "no skill 'nope'" in output and SKILL in output


def test_a_listing_over_budget_says_which_were_cut_in_the_prompt_and_the_log(
    tmp_path: Path,
) -> None:
    many = {}
    names = [f"skill-{index:02}" for index in range(10)]
    for name in names:  # ten descriptions of 1,000 characters: the API budget holds seven
        text = f"{name} " + "x" * (1000 - len(name) - 1)
        many[f"skills/{name}/SKILL.md"] = f"---\nname: {name}\ndescription: {text}\n---\nbody\n"
    with FakeModelServer() as server:
        repo = skill_repo(tmp_path, server, "anthropic", many, skills=names)
        server.add(write_hello("anthropic"), Say("Done."))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        [prompt] = stored_prompts(repo)
        cut = "skill-07, skill-08, skill-09"
        assert f"descriptions cut to fit 8000 characters; load by name: {cut}" in prompt
        assert "- skill-06: skill-06 x" in prompt and "- skill-07:" not in prompt
        first = server.requests[0].body
        assert first is not None and '"skill-09"' in json.dumps(first["tools"])  # loadable
        log = run_cli(repo, "log", only_run(repo)["id"])
        assert f"cuts the descriptions of {cut} for the agent 'anthropic'" in log.stdout


def test_agent_kinds_without_skill_tools_get_no_listing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", SKILL_FILES)
    catalogue = discover_skills(repo, home=tmp_path / "nohome", shipped=None)
    config = load_config_text(tmp_path, {"skills": [SKILL]})
    chosen = loop_skills(catalogue, config.loops["greet"])
    assert delivery_for(chosen, "anthropic").listing.endswith(f"- {SKILL}: {DESCRIPTION}")
    for kind in ("claude-code", "codex"):  # placed in the worktree, listed by the CLI itself
        delivery = delivery_for(chosen, kind)
        assert delivery.listing == "" and delivery.skills == chosen.skills
    for kind in ("command", "replay"):
        assert delivery_for(chosen, kind).skills == ()


# -- Claude Code and Codex ------------------------------------------------------------------


def look_and_write(kind: str, root: str) -> ToolUse:
    """The model's command that proves the skill is in the worktree during the turn (its
    SKILL.md copied outside the worktree, to `seen`) and writes hello.txt."""
    command = f"cat {root}/{SKILL}/SKILL.md > ../seen.md; printf '{GREETING}\\n' > hello.txt"
    if kind == "claude-code":
        return ToolUse("Bash", {"command": command})
    return ToolUse("exec_command", {"cmd": command})


@pytest.mark.parametrize(
    ("agent", "root"), [("claude-code", ".claude/skills"), ("codex", ".agents/skills")]
)
def test_a_cli_agent_finds_the_skill_in_the_worktree_and_it_never_lands(
    tmp_path: Path, agent: str, root: str
) -> None:
    with FakeModelServer() as server:
        repo = skill_repo(tmp_path, server, agent)
        server.add(look_and_write(agent, root), Say("Greeted."))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        run = only_run(repo)
        assert run["status"] == "succeeded", run
        worktree = Path(run["worktree"])
        # present during the turn: the CLI listed it to the model, and a command read it
        assert DESCRIPTION in json.dumps(server.requests[0].body)
        assert BODY in (worktree.parent / "seen.md").read_text()
        # gone after it, and never committed, diffed or merged
        assert not (worktree / root).exists()
        assert not (worktree / root.split("/")[0]).exists()
        changed = git(repo, "diff", "--name-only", "main", run["branch"]).split()
        assert changed == ["hello.txt"]
        diff = run_cli(repo, "diff", run["id"])
        assert diff.code == 0 and SKILL not in diff.stdout
        merged = run_cli(repo, "merge", run["id"])
        assert merged.code == 0, merged.stdout + merged.stderr
        landed = git(repo, "ls-tree", "-r", "--name-only", "main").split()
        assert "hello.txt" in landed and not any(path.startswith(root) for path in landed)


def test_placed_skills_are_ignored_by_git_and_leave_tracked_ones_alone(tmp_path: Path) -> None:
    tracked = {".claude/skills/other/SKILL.md": "---\nname: other\ndescription: mine\n---\nx\n"}
    repo = make_repo(tmp_path / "repo", {**SKILL_FILES, **tracked})
    repository = Repository(repo)
    worktree = tmp_path / "wt"
    repository.create_worktree(worktree, "looptui/t/1", repository.branch_commit("main"))
    catalogue = discover_skills(repo, home=tmp_path / "nohome", shipped=None)
    chosen = [catalogue.get(SKILL), catalogue.get("other")]
    assert all(chosen)
    placed = place_skills(worktree, ".claude/skills", [s for s in chosen if s])
    copy = worktree / ".claude/skills" / SKILL
    assert (copy / "SKILL.md").read_text() == SKILL_FILES[f"skills/{SKILL}/SKILL.md"]
    assert (copy / "references/words.md").read_text() == WORDS
    assert placed.folders == [copy.resolve()]  # the tracked one is the repository's own
    assert git(worktree, "status", "--porcelain", "--untracked-files=all") == ""
    git(worktree, "add", "-A")  # what an agent's own commit would take
    assert repository.commit_all(worktree, "nothing new") is None
    placed.remove()
    assert not copy.exists()
    assert (worktree / ".claude/skills/other/SKILL.md").read_text() == tracked[
        ".claude/skills/other/SKILL.md"
    ]
    # a copy a killed turn left behind is recognised and replaced, never doubled
    left = place_skills(worktree, ".claude/skills", [s for s in chosen if s])
    assert is_placed(copy)
    again = place_skills(worktree, ".claude/skills", [s for s in chosen if s])
    assert again.folders == left.folders
    again.remove()
    assert not copy.exists() and git(worktree, "status", "--porcelain") == ""


# -- the evaluator --------------------------------------------------------------------------


def test_the_evaluator_gets_the_strict_reviewer_by_default(tmp_path: Path) -> None:
    verdict = {"done": True, "confidence": 0.9, "reasons": ["greets"]}
    verdict["citations"] = [{"path": "hello.txt", "line": 1}]
    with FakeModelServer() as server:
        repo = skill_repo(tmp_path, server, "anthropic", evaluator="openai-responses", skills=[])
        server.add(
            write_hello("anthropic"),
            Say("Done."),
            ToolUse("load_skill", {"name": "strict-reviewer"}),
            Say(json.dumps(verdict)),
        )
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        executor, judge = server.requests[0].body, server.requests[2].body
        assert executor is not None and judge is not None
        assert "load_skill" not in tool_names(executor)  # the loop gave its agent no skills
        assert STRICT in json.dumps(judge) and "load_skill" in tool_names(judge)
        assert "## Skills" not in stored_prompts(repo)[0]
        loaded = json.dumps(server.requests[3].body)
        assert '<skill_content name=\\"strict-reviewer\\">' in loaded
        assert only_run(repo)["status"] == "succeeded"


def load_config_text(tmp_path: Path, loop: dict[str, Any]) -> Any:
    path = tmp_path / "cfg" / "looptui.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {
        "agents": {"a": {"kind": "command", "command": ["true"]}},
        "loops": {"greet": {"prompt": "p", "agent": "a", **loop}},
    }
    path.write_text(tomli_w.dumps(table))
    return load_config(path)


def test_evaluator_skills_are_chosen_or_none_and_validated(tmp_path: Path) -> None:
    default = load_config_text(tmp_path, {"evaluator": "a"}).loops["greet"]
    assert default.evaluator_skills == ("strict-reviewer",)
    none = load_config_text(tmp_path, {"evaluator": "a", "evaluator_skills": []})
    assert none.loops["greet"].evaluator_skills == ()
    with pytest.raises(ConfigError, match=r"loops\.greet\.evaluator_skills\[0\]: skill name"):
        load_config_text(tmp_path, {"evaluator_skills": ["Bad_Name"]})
    repo = make_repo(tmp_path / "repo", SKILL_FILES)
    catalogue = discover_skills(repo, home=tmp_path / "nohome", shipped=None)
    config = load_config_text(tmp_path, {"evaluator": "a"})
    assert loop_skills(catalogue, config.loops["greet"], evaluator=True).missing == (
        "strict-reviewer",
    )
    with pytest.raises(ConfigError, match=r"evaluator_skills: no skill 'strict-reviewer'"):
        check_skills(config, repo, home=tmp_path / "nohome", shipped=None)
    shipped = check_skills(config, repo, home=tmp_path / "nohome")
    assert shipped is not None and shipped.get("strict-reviewer") is not None
