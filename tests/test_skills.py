"""Skills: found in each place, shadowing and invalid ones reported, files confined, the
listing budget, `looptui skills`, a loop's unknown skill refused, the shipped three valid."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import make_repo, run_cli
from looptui.engine.config import load_config
from looptui.engine.errors import ConfigError
from looptui.engine.skills import (
    CLAUDE_CODE_BUDGET,
    CODEX_BUDGET,
    MAX_DIRECTORIES,
    SHIPPED_SKILLS,
    Catalogue,
    Skill,
    check_skills,
    discover_skills,
    fit_listing,
    listing_budget,
    listing_entry,
)

SHIPPED = ("checkpoint-writer", "strict-reviewer", "test-fixer")


def write_skill(
    root: Path,
    name: str,
    description: str = "Does a thing. Use when a thing is needed.",
    **extra: str,
) -> Path:
    """A SKILL.md for `name` in `root/name`, with `extra` frontmatter lines as given."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}", f"description: {description}"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in extra.items()]
    (directory / "SKILL.md").write_text("---\n" + "\n".join(lines) + "\n---\n# " + name + "\n")
    return directory


def write_raw(root: Path, directory: str, text: str) -> Path:
    path = root / directory / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's home, empty and private to the test (HOME decides `Path.home()`)."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


def discover(repository: Path) -> Catalogue:
    """The catalogue without looptui's own skills, so that only the test's count."""
    return discover_skills(repository, shipped=None)


def test_skills_are_found_in_each_place_with_their_source(tmp_path: Path, home: Path) -> None:
    repository = tmp_path / "repo"
    write_skill(repository / "skills", "top-level")
    write_skill(repository / ".claude" / "skills", "claude-project")
    write_skill(repository / ".agents" / "skills", "agents-project")
    write_skill(home / ".claude" / "skills", "claude-user")
    write_skill(home / ".agents" / "skills", "agents-user")
    shipped = tmp_path / "shipped"
    write_skill(shipped, "ours")
    write_skill(repository / "skills" / "group" / "deeper", "nested")  # within the depth

    catalogue = discover_skills(repository, shipped=shipped)

    found = {skill.name: (skill.source, skill.shown) for skill in catalogue.skills}
    assert found == {
        "top-level": ("project", "skills/top-level/SKILL.md"),
        "nested": ("project", "skills/group/deeper/nested/SKILL.md"),
        "claude-project": ("project", ".claude/skills/claude-project/SKILL.md"),
        "agents-project": ("project", ".agents/skills/agents-project/SKILL.md"),
        "claude-user": ("user", "~/.claude/skills/claude-user/SKILL.md"),
        "agents-user": ("user", "~/.agents/skills/agents-user/SKILL.md"),
        "ours": ("looptui", f"{shipped}/ours/SKILL.md"),
    }
    assert catalogue.warnings == () and catalogue.problems == ()
    skill = catalogue.get("claude-user")
    assert skill is not None and skill.directory == home / ".claude" / "skills" / "claude-user"
    assert skill.body() == "# claude-user\n"


def test_the_scan_skips_hidden_git_node_modules_and_what_is_too_deep(
    tmp_path: Path, home: Path
) -> None:
    skills = tmp_path / "repo" / "skills"
    write_skill(skills / "node_modules", "in-node-modules")
    write_skill(skills / ".hidden", "in-hidden")
    write_skill(skills / ".git", "in-git")
    write_skill(skills / "a" / "b" / "c", "at-depth-four")
    write_skill(skills / "a" / "b" / "c" / "d", "at-depth-five")
    names = {skill.name for skill in discover(tmp_path / "repo").skills}
    assert names == {"at-depth-four"}


def test_the_scan_stops_after_its_directory_budget_and_says_so(tmp_path: Path, home: Path) -> None:
    skills = tmp_path / "repo" / "skills"
    for index in range(MAX_DIRECTORIES + 5):
        (skills / f"d{index:05}").mkdir(parents=True)
    write_skill(skills / "zzz", "last")  # sorted after every empty directory, two levels down
    catalogue = discover(tmp_path / "repo")
    assert catalogue.get("last") is None
    assert any("stopped looking after 2000 directories" in w for w in catalogue.warnings)


def test_a_project_skill_shadows_a_user_skill_with_a_warning_naming_both(
    tmp_path: Path, home: Path
) -> None:
    repository = tmp_path / "repo"
    write_skill(repository / ".claude" / "skills", "deploy", "The project's deploy.")
    write_skill(home / ".claude" / "skills", "deploy", "The user's deploy.")
    shipped = tmp_path / "shipped"
    write_skill(shipped, "deploy", "looptui's deploy.")

    catalogue = discover_skills(repository, shipped=shipped)

    assert [skill.description for skill in catalogue.skills] == ["The project's deploy."]
    assert catalogue.warnings == (
        "skill 'deploy': .claude/skills/deploy/SKILL.md (project) shadows "
        "~/.claude/skills/deploy/SKILL.md (user), which is not used",
        "skill 'deploy': .claude/skills/deploy/SKILL.md (project) shadows "
        f"{shipped}/deploy/SKILL.md (looptui), which is not used",
    )


def test_the_same_folder_reached_twice_is_one_skill_and_no_warning(
    tmp_path: Path, home: Path
) -> None:
    repository = tmp_path / "repo"
    write_skill(repository / "skills", "only")
    catalogue = discover_skills(repository, shipped=repository / "skills")  # looptui's own repo
    assert [skill.name for skill in catalogue.skills] == ["only"]
    assert catalogue.warnings == ()


@pytest.mark.parametrize(
    ("directory", "text", "expected"),
    [
        (
            "Foo",
            "---\nname: Foo\ndescription: x\n---\n",
            'skills/Foo/SKILL.md: name: "Foo" must be lowercase letters, digits and hyphens',
        ),
        (
            "bad--name",
            "---\nname: bad--name\ndescription: x\n---\n",
            'skills/bad--name/SKILL.md: name: "bad--name" must not hold two hyphens in a row',
        ),
        (
            "-edge",
            "---\nname: -edge\ndescription: x\n---\n",
            'skills/-edge/SKILL.md: name: "-edge" must not start or end with a hyphen',
        ),
        (
            "a" * 65,
            f"---\nname: {'a' * 65}\ndescription: x\n---\n",
            f'skills/{"a" * 65}/SKILL.md: name: "{"a" * 65}" is 65 characters, at most 64 allowed',
        ),
        (
            "folder",
            "---\nname: other\ndescription: x\n---\n",
            'skills/folder/SKILL.md: name: "other" must equal its directory\'s name "folder"',
        ),
        (
            "quiet",
            "---\nname: quiet\n---\nbody\n",
            "skills/quiet/SKILL.md: description: missing: say what the skill does and when to "
            "use it",
        ),
        (
            "long",
            f"---\nname: long\ndescription: {'d' * 1025}\n---\n",
            "skills/long/SKILL.md: description: 1025 characters, at most 1024 allowed",
        ),
        (
            "broken",
            "---\nname: broken\ndescription: [unclosed\n---\n",
            "skills/broken/SKILL.md: frontmatter: invalid YAML:",
        ),
        (
            "bare",
            "# Just Markdown\n\nNo frontmatter at all.\n",
            "skills/bare/SKILL.md: frontmatter: SKILL.md must open with a '---' line and YAML "
            "frontmatter",
        ),
        (
            "unclosed",
            "---\nname: unclosed\ndescription: x\n",
            "skills/unclosed/SKILL.md: frontmatter: the frontmatter's closing '---' line is "
            "missing",
        ),
        (
            "compat",
            f"---\nname: compat\ndescription: x\ncompatibility: {'c' * 501}\n---\n",
            "skills/compat/SKILL.md: compatibility: 501 characters, at most 500 allowed",
        ),
        (
            "meta",
            "---\nname: meta\ndescription: x\nmetadata:\n  nested: {a: b}\n---\n",
            "skills/meta/SKILL.md: metadata: nested: expected a string, got {'a': 'b'}",
        ),
    ],
    ids=[
        "uppercase",
        "double-hyphen",
        "leading-hyphen",
        "too-long-name",
        "name-not-dir",
        "no-description",
        "long-description",
        "broken-yaml",
        "no-frontmatter",
        "unclosed-frontmatter",
        "long-compatibility",
        "nested-metadata",
    ],
)
def test_an_invalid_skill_is_reported_with_its_file_and_field_and_skipped(
    tmp_path: Path, home: Path, directory: str, text: str, expected: str
) -> None:
    repository = tmp_path / "repo"
    write_raw(repository / "skills", directory, text)
    write_skill(repository / "skills", "fine")
    catalogue = discover(repository)
    assert [skill.name for skill in catalogue.skills] == ["fine"]
    problems = [str(problem) for problem in catalogue.problems]
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert "\n" not in problems[0]


def test_frontmatter_is_read_leniently_and_extra_keys_are_kept(tmp_path: Path, home: Path) -> None:
    text = (
        "\ufeff---\r\n"
        "description: Review changes. Use when: a diff needs a second pair of eyes\r\n"
        "license: MIT\r\n"
        "allowed-tools: Bash(git diff *) Read\r\n"
        "when_to_use: after every iteration\r\n"
        "metadata:\r\n  version: 1.0\r\n  stable: true\r\n"
        "---\r\nBody text.\r\n"
    )
    write_raw(tmp_path / "repo" / ".agents" / "skills", "second-look", text)
    catalogue = discover(tmp_path / "repo")
    assert catalogue.problems == ()
    skill = catalogue.get("second-look")  # the name defaults to the directory's, as in Claude Code
    assert skill is not None
    assert skill.description == "Review changes. Use when: a diff needs a second pair of eyes"
    assert skill.license == "MIT"
    assert skill.allowed_tools == ("Bash(git", "diff", "*)", "Read")
    assert skill.metadata == {"version": "1.0", "stable": "true"}
    assert skill.extras == {"when_to_use": "after every iteration"}
    assert skill.body() == "Body text.\n"


def test_files_lists_one_level_deep_and_never_follows_a_symlink_out(
    tmp_path: Path, home: Path
) -> None:
    directory = write_skill(tmp_path / "repo" / "skills", "pdf")
    (directory / "scripts").mkdir()
    (directory / "scripts" / "fill.py").write_text("print('fill')\n")
    (directory / "references").mkdir()
    (directory / "references" / "REFERENCE.md").write_text("# Reference\n")
    (directory / "references" / "deeper").mkdir()
    (directory / "references" / "deeper" / "too-far.md").write_text("no\n")
    (directory / "template.txt").write_text("t\n")
    (directory / ".secret").write_text("hidden\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwords.txt").write_text("hunter2\n")
    (directory / "escape.txt").symlink_to(outside / "passwords.txt")
    (directory / "escape-dir").symlink_to(outside, target_is_directory=True)
    (directory / "scripts" / "escape.txt").symlink_to(outside / "passwords.txt")
    (directory / "inside-link.txt").symlink_to(directory / "template.txt")

    skill = discover(tmp_path / "repo").get("pdf")
    assert skill is not None
    assert skill.files() == (
        "inside-link.txt",
        "references/REFERENCE.md",
        "scripts/fill.py",
        "template.txt",
    )
    assert skill.read_file("references/REFERENCE.md") == "# Reference\n"
    with pytest.raises(ValueError, match="outside"):
        skill.read_file("escape.txt")
    with pytest.raises(ValueError, match="climbs out"):
        skill.read_file("../../outside/passwords.txt")
    with pytest.raises(FileNotFoundError):
        skill.read_file("references/deeper/too-far.md")


def test_a_project_folder_linked_out_of_the_repository_is_not_followed(
    tmp_path: Path, home: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_skill(elsewhere, "foreign")
    skills = tmp_path / "repo" / "skills"
    skills.mkdir(parents=True)
    (skills / "foreign").symlink_to(elsewhere / "foreign", target_is_directory=True)
    (skills / "group").symlink_to(elsewhere, target_is_directory=True)
    catalogue = discover(tmp_path / "repo")
    assert catalogue.skills == ()
    assert "skills/foreign/SKILL.md: a symlink out of the repository; not followed" in (
        catalogue.warnings
    )


def make_skill(name: str, description: str) -> Skill:
    path = Path("/nowhere") / name
    return Skill(name, description, path, "project", path / "SKILL.md", f"skills/{name}/SKILL.md")


def test_the_budget_says_which_descriptions_would_be_cut() -> None:
    skills = [
        make_skill("first", "a" * 60),
        make_skill("second", "b" * 60),
        make_skill("third", "c" * 10),
    ]
    cost = [len(listing_entry(skill)) + 1 for skill in skills]
    listing = fit_listing(skills, cost[0] + cost[2] + 5)  # room for the first and the third
    assert [skill.name for skill in listing.shown] == ["first", "third"]
    assert listing.cut == ("second",)
    assert listing.used == cost[0] + cost[2]
    assert not listing.fits
    everything = fit_listing(skills, sum(cost))
    assert everything.fits and everything.cut == ()
    assert fit_listing(skills, None).cut == ()


def test_each_agent_kind_has_its_documented_budget() -> None:
    assert listing_budget("claude-code") == CLAUDE_CODE_BUDGET == 8_000
    assert listing_budget("codex") == CODEX_BUDGET == 5_440
    assert listing_budget("anthropic") == listing_budget("openai") == 8_000
    assert listing_budget("command") is None


def loop_config(**loop: Any) -> dict[str, Any]:
    return {
        "agents": {
            "shell": {"kind": "command", "command": ["python", "-c", "print('done')"]},
            "coder": {"kind": "codex", "model": "gpt-5"},
            "judge": {"kind": "claude-code"},
        },
        "loops": {
            "fix": {"prompt": "Fix it.", "agent": "shell", "checks": ["true"], **loop},
        },
    }


@pytest.mark.parametrize(
    ("skills", "message"),
    [
        ("test-fixer", "loops.fix.skills: expected a list of non-empty strings, got 'test-fixer'"),
        (["ok", 3], "loops.fix.skills: expected a list of non-empty strings"),
        (["Bad_Name"], 'loops.fix.skills[0]: skill name "Bad_Name" must be lowercase letters'),
        (["same", "same"], "loops.fix.skills: expected skill names without repeats"),
    ],
)
def test_a_loop_s_skills_are_type_checked(tmp_path: Path, skills: object, message: str) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=skills))
    with pytest.raises(ConfigError, match=r"^\S*looptui.toml: ") as raised:
        load_config(root / "looptui.toml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_check_skills_names_the_loop_the_skill_and_the_places_searched(
    tmp_path: Path, home: Path
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=["nope"]))
    config = load_config(root / "looptui.toml")
    with pytest.raises(ConfigError) as raised:
        check_skills(config, root, shipped=None)
    assert str(raised.value) == (
        f"{root / 'looptui.toml'}: loops.fix.skills: no skill 'nope' found (searched skills, "
        ".claude/skills, .agents/skills, ~/.claude/skills, ~/.agents/skills)"
    )
    write_raw(root / "skills", "nope", "---\nname: nope\n---\n")
    with pytest.raises(ConfigError, match=r"skill 'nope' is invalid: skills/nope/SKILL\.md: desc"):
        check_skills(config, root, shipped=None)
    write_skill(root / "skills", "nope")
    catalogue = check_skills(config, root, shipped=None)
    assert catalogue is not None and catalogue.get("nope") is not None


def test_an_unknown_skill_is_refused_when_work_starts_and_nothing_runs(
    tmp_path: Path, home: Path
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=["ghost"]))
    result = run_cli(root, "run", "fix")
    assert result.code == 2, result
    assert result.stderr.strip().splitlines() == [
        f"looptui: {root / 'looptui.toml'}: loops.fix.skills: no skill 'ghost' found "
        "(searched skills, .claude/skills, .agents/skills, ~/.claude/skills, ~/.agents/skills, "
        "looptui's own skills)"
    ]
    assert not list((root / ".git" / "looptui").glob("runs/*"))
    write_skill(root / "skills", "ghost")
    assert run_cli(root, "run", "fix").code == 0


@pytest.mark.usefixtures("service")
def test_an_unknown_skill_starts_no_service_and_fires_nothing(tmp_path: Path, home: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=["ghost"]))
    for args in (("run", "fix"), ("fire", "fix"), ("service", "start")):
        result = run_cli(root, *args)
        assert result.code == 2, (args, result)
        assert "loops.fix.skills: no skill 'ghost' found" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert run_cli(root, "service", "status").stdout.startswith("no looptui service")


def test_the_cli_lists_skills_warnings_and_problems(tmp_path: Path, home: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"})
    write_raw(
        root / "skills", "deploy", "---\ndescription: |\n  Ship it.\n  Use when releasing.\n---\n"
    )
    write_skill(home / ".agents" / "skills", "deploy", "The user's own.")
    write_raw(root / ".claude" / "skills", "Broken", "---\nname: Broken\ndescription: x\n---\n")

    result = run_cli(root, "skills")

    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert "deploy  project  skills/deploy/SKILL.md" in lines
    assert "    Ship it. Use when releasing." in lines
    for name in SHIPPED:
        assert any(line.startswith(f"{name}  looptui  ") for line in lines), lines
    assert (
        "warning: skill 'deploy': skills/deploy/SKILL.md (project) shadows "
        "~/.agents/skills/deploy/SKILL.md (user), which is not used"
    ) in lines
    assert (
        'invalid, skipped: .claude/skills/Broken/SKILL.md: name: "Broken" must be lowercase '
        "letters, digits and hyphens"
    ) in lines

    data = json.loads(run_cli(root, "skills", "--json").stdout)
    by_name = {skill["name"]: skill for skill in data["skills"]}
    assert by_name["deploy"]["source"] == "project"
    assert by_name["deploy"]["path"] == str(root / "skills" / "deploy" / "SKILL.md")
    assert set(SHIPPED) <= set(by_name)
    assert [p["field"] for p in data["problems"]] == ["name"]
    assert data["problems"][0]["shown"] == ".claude/skills/Broken/SKILL.md"
    assert len(data["warnings"]) == 1
    assert [root["shown"] for root in data["searched"]][:5] == [
        "skills",
        ".claude/skills",
        ".agents/skills",
        "~/.claude/skills",
        "~/.agents/skills",
    ]


def test_the_cli_shows_what_a_loop_s_agents_receive_and_what_would_be_cut(
    tmp_path: Path, home: Path
) -> None:
    # six descriptions of 1,000 characters: Codex's 5,440 cut the sixth, Claude Code's 8,000
    # none
    names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    config = loop_config(skills=names, evaluator="judge")
    config["loops"]["fix"]["agent"] = "coder"
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    for name in names:
        write_skill(root / ".agents" / "skills", name, name[0] * 1000)

    result = run_cli(root, "skills", "--loop", "fix")

    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "loop fix: 6 of 6 skills found"
    assert lines[1] == "  alpha  project  .agents/skills/alpha/SKILL.md"
    assert lines[2] == "      " + "a" * 95 + "…"
    assert (
        "executor coder (codex): listing budget 5,440 characters: 5 of 6 descriptions fit "
        "(5,051 used); would be cut: zeta"
    ) in lines
    # the evaluator receives its own skills: the shipped strict reviewer by default
    assert "loop fix, its evaluator: 1 of 1 skill found" in lines
    assert any(
        line.startswith(
            "evaluator judge (claude-code): listing budget 8,000 characters: 1 of 1 "
            "descriptions fit"
        )
        for line in lines
    )
    assert not any("your own" in line for line in lines)  # this home has no skills

    data = json.loads(run_cli(root, "skills", "--loop", "fix", "--json").stdout)
    loop = data["loop"]
    assert loop["skills"] == names and loop["missing"] == []
    assert [(a["role"], a["kind"], a["skills"], a["cut"]) for a in loop["agents"]] == [
        ("executor", "codex", names, ["zeta"]),
        ("evaluator", "claude-code", ["strict-reviewer"], []),
    ]


def test_the_cli_refuses_an_unknown_loop_in_one_line(tmp_path: Path, home: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config())
    result = run_cli(root, "skills", "--loop", "nope")
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "looptui: unknown loop 'nope' (loops in looptui.toml: fix)"
    ]


def test_the_cli_says_which_chosen_skills_are_missing(tmp_path: Path, home: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=["ghost"]))
    result = run_cli(root, "skills", "--loop", "fix")
    assert result.code == 2  # a run of the loop would be refused
    assert result.stdout.splitlines()[:2] == [
        "loop fix: 0 of 1 skill found",
        "  ghost  NOT FOUND (searched skills, .claude/skills, .agents/skills, ~/.claude/skills, "
        "~/.agents/skills, looptui's own skills)",
    ]


def test_the_shipped_skills_are_found_valid_and_concise(tmp_path: Path, home: Path) -> None:
    catalogue = discover_skills(tmp_path, shipped=SHIPPED_SKILLS)
    assert catalogue.problems == () and catalogue.warnings == ()
    assert tuple(sorted(skill.name for skill in catalogue.skills)) == SHIPPED
    for skill in catalogue.skills:
        assert skill.source == "looptui"
        assert "Use when" in skill.description
        body = skill.body()
        assert 20 < len(body.splitlines()) < 150
    # the packaging keeps them: `_skills` in the package is the top-level `skills/` folder
    top_level = Path(__file__).resolve().parents[1] / "skills"
    assert SHIPPED_SKILLS.resolve() == top_level.resolve()
    assert sorted(os.listdir(top_level)) == list(SHIPPED)


def test_the_strict_reviewer_knows_every_tamper_rule() -> None:
    from looptui.engine import verification

    rules = {
        value
        for name, value in vars(verification).items()
        if name.isupper() and isinstance(value, str) and name not in ("FAMILIES",)
    }
    body = (SHIPPED_SKILLS / "strict-reviewer" / "SKILL.md").read_text()
    missing = sorted(rule for rule in rules if f"`{rule}`" not in body)
    assert missing == []
    assert "`bad-citation`" in body
    assert textwrap.dedent('"citations": [{"path"') in body


def test_the_cli_says_a_chosen_skill_is_invalid_and_why(tmp_path: Path, home: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, loop_config(skills=["broken"]))
    folder = root / "skills" / "broken"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: broken\n---\nNo description.\n")
    result = run_cli(root, "skills", "--loop", "fix")
    assert result.code == 2
    line = result.stdout.splitlines()[1]
    assert line.startswith("  broken  INVALID: skills/broken/SKILL.md: description")


def test_the_cli_names_a_user_skill_claude_code_will_use_instead(
    tmp_path: Path, home: Path
) -> None:
    config = loop_config(skills=["dup"])
    config["loops"]["fix"]["agent"] = "judge"  # a claude-code agent
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    write_skill(root / ".claude" / "skills", "dup", "the project's")
    write_skill(home / ".claude" / "skills", "dup", "mine")
    write_skill(home / ".claude" / "skills", "other", "another of mine")
    lines = run_cli(root, "skills", "--loop", "fix").stdout.splitlines()
    assert (
        "    claude-code will use your own dup (~/.claude/skills), not the loop's: personal "
        "skills rank above the project's"
    ) in lines
    assert "    claude-code also loads 1 of your own skill itself (~/.claude/skills)" in lines
