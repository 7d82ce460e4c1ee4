"""A loop's triggers, policy and `when` in `looptui.toml`: parsed to the model, or refused
with one line naming the file, the loop and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import BUGGY_PACKAGE, FIXER, fixer_config, make_repo, run_cli
from looptui.engine.config import ConfigError, LoopConfig, load_config
from looptui.engine.models import RunStatus
from looptui.engine.triggers import After, Cron, Every, GitCommits, Policy, Watch
from looptui.engine.workspace import Repository

AGENT = '[agents.a]\nkind = "command"\ncommand = ["echo", "{prompt}"]\n'
BUILD = '[loops.build]\nprompt = "build"\nagent = "a"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "looptui.toml"
    path.write_text(AGENT + BUILD + textwrap.dedent(text))
    return path


def loop_x(tmp_path: Path, body: str) -> LoopConfig:
    """The loop `x` of a config whose other loop is `build`; `body` follows its header."""
    path = write(tmp_path, '[loops.x]\nprompt = "p"\nagent = "a"\n' + textwrap.dedent(body))
    return load_config(path).loops["x"]


def test_each_kind_parses_to_its_model_with_its_defaults(tmp_path: Path) -> None:
    loop = loop_x(
        tmp_path,
        """
        [[loops.x.triggers]]
        cron = "0 3 * * *"
        [[loops.x.triggers]]
        every = "15m"
        [[loops.x.triggers]]
        watch = ["src/**/*.py"]
        [[loops.x.triggers]]
        git = "main"
        [[loops.x.triggers]]
        after = "build"
        """,
    )
    assert loop.triggers == (
        Cron(expression="0 3 * * *", timezone="UTC", name="cron", paused=False),
        Every(interval_seconds=900.0, jitter_seconds=0.0, name="every", paused=False),
        Watch(globs=("src/**/*.py",), debounce_seconds=0.5, ignore=(), name="watch"),
        GitCommits(branch="main", name="git", paused=False),
        After(loop="build", statuses=(RunStatus.SUCCEEDED,), name="after", paused=False),
    )
    assert loop.policy == Policy(
        overlap="queue",
        parallel_max=None,
        catch_up="run_once",
        catch_up_max_age=86400.0,
        max_concurrent=None,
    )
    assert loop.when == ()


def test_every_option_of_each_kind_and_of_the_policy(tmp_path: Path) -> None:
    loop = loop_x(
        tmp_path,
        """
        when = ["git diff --quiet HEAD~1 || echo changed", "test -f todo.txt"]
        [[loops.x.triggers]]
        cron = "30 9 * * MON-FRI"
        timezone = "Europe/Paris"
        name = "mornings"
        [[loops.x.triggers]]
        every = "2h"
        jitter = "5m"
        paused = true
        [[loops.x.triggers]]
        watch = ["src/**/*.py", "docs/*.md"]
        debounce = "2s"
        ignore = ["src/generated/**"]
        [[loops.x.triggers]]
        watch = ["pyproject.toml"]
        debounce = 0
        name = "deps"
        [[loops.x.triggers]]
        git = "release/2.x"
        [[loops.x.triggers]]
        after = "build"
        statuses = ["failed", "stalled", "failed"]
        [loops.x.policy]
        overlap = "parallel"
        parallel_max = 3
        catch_up = "run_once"
        catch_up_max_age = "6h"
        max_concurrent = 2
        """,
    )
    assert loop.triggers == (
        Cron("30 9 * * MON-FRI", "Europe/Paris", name="mornings"),
        Every(7200.0, 300.0, paused=True),
        Watch(("src/**/*.py", "docs/*.md"), 2.0, ("src/generated/**",)),
        Watch(("pyproject.toml",), 0.0, name="deps"),
        GitCommits("release/2.x"),
        After("build", (RunStatus.FAILED, RunStatus.STALLED)),
    )
    assert loop.policy == Policy("parallel", 3, "run_once", 6 * 3600.0, 2)
    assert loop.when == ("git diff --quiet HEAD~1 || echo changed", "test -f todo.txt")


def test_inline_trigger_tables_read_the_same(tmp_path: Path) -> None:
    inline = loop_x(tmp_path, 'triggers = [{ every = "30s", jitter = 3 }, { git = "main" }]\n')
    assert inline.triggers == (Every(30.0, 3.0), GitCommits("main"))


def test_a_loop_without_triggers_is_the_loop_run_by_hand_it_was(tmp_path: Path) -> None:
    loop = load_config(write(tmp_path, "")).loops["build"]
    assert loop == LoopConfig(name="build", prompt="build", agent="a")
    assert (loop.triggers, loop.policy, loop.when) == ((), Policy(), ())
    assert loop_x(tmp_path, "triggers = []\n[loops.x.policy]\n").triggers == ()


def test_an_after_edge_to_a_loop_defined_later_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [loops.first]
        prompt = "p"
        agent = "a"
        triggers = [{ after = "last" }]
        [loops.last]
        prompt = "p"
        agent = "a"
        """,
    )
    assert load_config(path).loops["first"].triggers == (After("last"),)


BAD_TRIGGERS = [
    ('cron = "61 * * * *"', "triggers[0].cron: expected a valid cron expression (bad minute)"),
    ('cron = "0 0 30 2 *"', "triggers[0].cron: expected a valid cron expression (bad day-of"),
    ('cron = "* * * * * *"', "triggers[0].cron: expected a cron expression of five fields"),
    ('cron = "@daily"', "triggers[0].cron: expected a cron expression of five fields"),
    ('cron = "0 3 * * *"\ntimezone = "Mars/Olympus"', "triggers[0].timezone: expected an IANA"),
    ('cron = "0 3 * * *"\ntimezone = "../etc/passwd"', "triggers[0].timezone: expected an IANA"),
    ('cron = "0 3 * * *"\ntimezone = "Europe"', "triggers[0].timezone: expected an IANA"),
    ('every = "soon"', "triggers[0].every: expected an interval of at least 1s"),
    ('every = "500ms"', "triggers[0].every: expected an interval of at least 1s"),
    ("every = 0", "triggers[0].every: expected an interval of at least 1s"),
    ('every = "1h"\njitter = "-5m"', "triggers[0].jitter: expected a duration of 0 or more"),
    ('every = "1h"\njitter = -1', "triggers[0].jitter: expected a duration of 0 or more"),
    (
        'every = "1h"\njitter = "2h"',
        "triggers[0].jitter: expected less than the interval (3600s), got '2h'",
    ),
    ("watch = []", "triggers[0].watch: expected a non-empty list of globs"),
    ('watch = "src/*.py"', "triggers[0].watch: expected a non-empty list of globs"),
    ('watch = [""]', "triggers[0].watch: expected a list of non-empty strings"),
    ('watch = ["../elsewhere/*"]', "triggers[0].watch: expected globs relative to the reposi"),
    ('watch = ["/etc/*"]', "triggers[0].watch: expected globs relative to the repository"),
    ('watch = ["*.py"]\nignore = "x"', "triggers[0].ignore: expected a list of globs, such as"),
    ('watch = ["*.py"]\ndebounce = "-1s"', "triggers[0].debounce: expected a duration of 0 or"),
    ('git = "a..b"', "triggers[0].git: expected a branch name"),
    ('git = "-main"', "triggers[0].git: expected a branch name"),
    ('git = "topic.lock"', "triggers[0].git: expected a branch name"),
    ('git = ""', "triggers[0].git: expected a non-empty string"),
    ('after = "nope"', "triggers[0].after: expected the name of a loop (build, x), got 'nope'"),
    ('after = "build"\nstatuses = ["running"]', "triggers[0].statuses: expected a non-empty list"),
    (
        'after = "build"\nstatuses = ["won"]',
        "triggers[0].statuses: expected a non-empty list of final statuses (succeeded, unchanged,",
    ),
    ('after = "build"\nstatuses = []', "triggers[0].statuses: expected a non-empty list"),
    ('name = "t"', "triggers[0]: expected exactly one of cron, every, watch, git, after"),
    ('cron = "0 3 * * *"\nevery = "1h"', "triggers[0]: expected exactly one of cron, every,"),
    ('every = "1h"\ntimezone = "UTC"', "triggers[0].timezone: unknown key (expected one of ever"),
    ('every = "1h"\npaused = "yes"', "triggers[0].paused: expected true or false"),
    ('every = "1h"\nname = "a b"', "triggers[0].name: expected a name of letters"),
]


@pytest.mark.parametrize(("trigger", "message"), BAD_TRIGGERS)
def test_a_bad_trigger_is_one_line_naming_the_loop_and_key(
    tmp_path: Path, trigger: str, message: str
) -> None:
    assert_refused(tmp_path, f"[[loops.x.triggers]]\n{trigger}\n", f"loops.x.{message}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[loops.x.policy]\noverlap = "drop"', "policy.overlap: expected one of skip, queue, re"),
        ('[loops.x.policy]\ncatch_up = "all"', "policy.catch_up: expected one of skip, run_once"),
        ('[loops.x.policy]\novelap = "skip"', "policy.ovelap: unknown key (expected one of over"),
        (
            '[loops.x.policy]\noverlap = "parallel"',
            'policy.parallel_max: expected a positive integer with overlap = "parallel"',
        ),
        (
            '[loops.x.policy]\noverlap = "parallel"\nparallel_max = 0',
            "policy.parallel_max: expected a positive integer, got 0",
        ),
        (
            "[loops.x.policy]\nparallel_max = 2",
            'policy.parallel_max: only applies with overlap = "parallel"',
        ),
        (
            '[loops.x.policy]\ncatch_up = "skip"\ncatch_up_max_age = "1h"',
            'policy.catch_up_max_age: only applies with catch_up = "run_once"',
        ),
        ('[loops.x.policy]\ncatch_up_max_age = "-1h"', "policy.catch_up_max_age: expected a posi"),
        ("[loops.x.policy]\nmax_concurrent = 0", "policy.max_concurrent: expected a positive int"),
        ('policy = "queue"', "policy: expected a table"),
        ('triggers = "every 2h"', "triggers: expected an array of trigger tables"),
        ('when = "make check"', "when: expected a list of non-empty strings"),
        (
            '[[loops.x.triggers]]\nevery = "1h"\n[[loops.x.triggers]]\nevery = "2h"',
            "triggers[1].name: expected a name no other trigger of the loop has",
        ),
        (
            '[[loops.x.triggers]]\ngit = "main"\nname = "t"\n'
            '[[loops.x.triggers]]\ncron = "0 * * * *"\nname = "t"',
            "triggers[1].name: expected a name no other trigger of the loop has",
        ),
    ],
)
def test_a_bad_policy_when_or_trigger_list_is_one_line(
    tmp_path: Path, body: str, message: str
) -> None:
    assert_refused(tmp_path, body + "\n", f"loops.x.{message}")


def assert_refused(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, '[loops.x]\nprompt = "p"\nagent = "a"\n' + body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text
    assert "\n" not in text


def loops_after(edges: dict[str, list[str]]) -> str:
    """Loops where `edges[name]` are the loops `name` runs after, as TOML."""
    lines = []
    for name, upstream in edges.items():
        lines.append(f'[loops.{name}]\nprompt = "p"\nagent = "a"')
        lines.extend(
            f'[[loops.{name}.triggers]]\nafter = "{other}"\nname = "after-{other}"'
            for other in upstream
        )
    return "\n".join(lines) + "\n"


CYCLE = "`after` triggers form a cycle, each loop firing the next:"


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"a": ["a"]}, f"loops.a.triggers[0]: {CYCLE} a -> a"),
        ({"a": ["b"], "b": ["a"]}, f"loops.a.triggers[0]: {CYCLE} a -> b -> a"),
        # build feeds a, which sits on a cycle of three with b and c; d hangs off a
        (
            {"a": ["build", "c"], "b": ["a"], "c": ["b"], "d": ["a"]},
            f"loops.a.triggers[1]: {CYCLE} a -> b -> c -> a",
        ),
    ],
)
def test_a_cycle_of_after_edges_is_refused_and_named(
    tmp_path: Path, edges: dict[str, list[str]], message: str
) -> None:
    path = write(tmp_path, loops_after(edges))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


def test_chains_that_join_again_are_no_cycle(tmp_path: Path) -> None:
    edges = {"lint": ["build"], "test": ["build"], "deploy": ["lint", "test"]}
    loops = load_config(write(tmp_path, loops_after(edges))).loops
    assert [t.loop for t in loops["deploy"].triggers if isinstance(t, After)] == ["lint", "test"]


def test_a_long_chain_is_checked_without_recursion(tmp_path: Path) -> None:
    count = 1500  # deeper than Python's default recursion limit
    edges = {f"l{i}": [f"l{i + 1}"] for i in range(count - 1)} | {f"l{count - 1}": []}
    assert len(load_config(write(tmp_path, loops_after(edges))).loops) == count + 1
    edges[f"l{count - 1}"] = ["l0"]
    with pytest.raises(ConfigError, match=f"{CYCLE} l0 -> l1499 -> l1498 -> "):
        load_config(write(tmp_path, loops_after(edges)))


@pytest.mark.usefixtures("service")
def test_run_refuses_a_bad_trigger_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    config = fixer_config(triggers=[{"every": "1h"}, {"cron": "0 25 * * *"}])
    repo = make_repo(tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": FIXER}, config)
    result = run_cli(repo, "run", "fix")
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "looptui.toml: loops.fix.triggers[1].cron: expected a valid cron expression" in (
        result.stderr
    )
    assert not Repository(repo).data_dir.exists()  # no service, no store: nothing started
