"""Review by line: a hunk narrowed to some of its lines, applied by real git, merged by the
engine and by `looptui review`, and the tally of what nobody read."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import msgspec
import pytest

from conftest import BUGGY_PACKAGE, cli_env, fixer_config, git, make_repo, run_cli
from looptui.engine import Engine, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.review_specs import BadSpec, parse_spec
from looptui.engine.workspace import (
    Decision,
    KeptDecision,
    LineKind,
    Selection,
    build_patch,
    parse_patch,
)

OLD = "".join(f"line {n}\n" for n in range(1, 21))
# Two hunks: the first removes two lines and adds two, the second changes one line later.
NEW = (
    OLD.replace("line 4\n", "line four\nextra\n")
    .replace("line 5\n", "")
    .replace("line 17\n", "line seventeen\n")
)


def diff_repo(tmp_path: Path) -> tuple[Path, str]:
    root = make_repo(tmp_path / "lines", {"f.txt": OLD})
    (root / "f.txt").write_text(NEW)
    return root, git(root, "diff")


def expected(patch_text: str, rejected: set[int]) -> str:
    """The new file with the changed lines at `rejected` (first hunk) taken back: walked
    from the diff by hand, independent of `Hunk.only`."""
    patch = parse_patch(patch_text)
    first = patch.files[0].hunks[0]
    out = OLD.splitlines(keepends=True)[: first.old_start - 1]
    for index, line in enumerate(first.lines):
        keep = line.kind is LineKind.CONTEXT or (
            (line.kind is LineKind.ADDED) != (index in rejected)
        )
        if keep:
            out.append(line.text + "\n")
    rest = NEW.splitlines(keepends=True)[first.new_start - 1 + first.new_count :]
    return "".join(out + rest)


def test_every_choice_of_lines_applies_with_git_both_ways(tmp_path: Path) -> None:
    root, text = diff_repo(tmp_path)
    patch = parse_patch(text)
    first, second = patch.files[0].hunks
    changed = first.changed
    assert len(changed) == 4 and second.changed
    for size in range(len(changed) + 1):
        for rejected in map(set, itertools.combinations(changed, size)):
            want = expected(text, rejected)
            # taken out of the new side (how a merge leaves them out)
            selection = Selection(patch)
            selection.decide_lines(first.key, frozenset(rejected))
            reverse = selection.rejected_patch()
            (root / "f.txt").write_text(NEW)
            if reverse is not None:
                subprocess.run(
                    ["git", "apply", "-R", "-"], cwd=root, input=reverse, text=True, check=True
                )
            assert (root / "f.txt").read_text() == want, (rejected, reverse)
            # put on the old side (the accepted lines forward), the second hunk with them
            accepted = set(changed) - rejected
            forward = build_patch(
                patch, [first.key, second.key], lines={first.key: frozenset(accepted)}
            )
            (root / "f.txt").write_text(OLD)
            subprocess.run(["git", "apply", "-"], cwd=root, input=forward, text=True, check=True)
            assert (root / "f.txt").read_text() == want, (rejected, forward)


def test_line_decisions_toggle_carry_and_keep(tmp_path: Path) -> None:
    _, text = diff_repo(tmp_path)
    patch = parse_patch(text)
    first, second = patch.files[0].hunks
    selection = Selection(patch)
    selection.toggle_line(first.key, first.changed[1])
    assert selection.decision(first.key) is Decision.ACCEPTED
    assert selection.rejected_lines(first.key) == {first.changed[1]}
    assert selection.counts().rejected_lines == 1
    for index in first.changed:  # every line left out: the hunk is rejected
        if index != first.changed[1]:
            selection.toggle_line(first.key, index)
    assert selection.decision(first.key) is Decision.REJECTED
    selection.toggle_line(first.key, first.changed[0])  # one line taken back in
    assert selection.decision(first.key) is Decision.ACCEPTED
    assert selection.rejected_lines(first.key) == set(first.changed[1:])
    stored = msgspec.json.encode(selection.to_data())  # as the store and the service do
    kept = Selection.from_data(patch, msgspec.json.decode(stored, type=list[KeptDecision]))
    assert kept.rejected_lines(first.key) == set(first.changed[1:])
    assert kept.rejected_patch() == selection.rejected_patch()
    tally = selection.tally(shown={first.key})
    assert (tally.hunks, tally.decided_hunks, tally.shown_hunks, tally.unread_hunks) == (2, 1, 1, 1)
    assert tally.unread_lines == second.added + second.removed


AGENT = textwrap.dedent(
    """\
    import pathlib
    path = pathlib.Path("shapes/area.py")
    path.write_text(
        "def rectangle(width, height):\\n"
        "    print('debug', width, height)\\n"
        "    return width * height\\n"
    )
    """
)
FIXED = "def rectangle(width, height):\n    return width * height\n"


def debug_repo(tmp_path: Path, **review: object) -> Path:
    config = fixer_config()
    if review:
        config["review"] = review
    return make_repo(tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": AGENT}, config)


def test_a_spec_naming_nothing_says_what_there_is_in_plain_words(tmp_path: Path) -> None:
    root, _ = diff_repo(tmp_path)
    (root / "new.txt").write_text("one\ntwo\n")
    git(root, "add", "--all")
    patch = parse_patch(git(root, "diff", "--cached"))
    first = patch.files[0].hunks[0]
    context = next(i for i, line in enumerate(first.lines) if line.kind is LineKind.CONTEXT)
    changed = first.changed[0] + 1
    size = len(first.lines)
    lines = f"{size} lines (1-{size})"
    said = {
        "f.txt:3": "f.txt has 2 hunks (1-2); there is no hunk 3",
        "f.txt:0": "f.txt has 2 hunks (1-2); there is no hunk 0",
        "f.txt:x": "f.txt has 2 hunks (1-2); there is no hunk 'x'",
        "new.txt:2": "new.txt has 1 hunk (1); there is no hunk 2",
        f"f.txt:1:{size + 1}": f"f.txt hunk 1 has {lines}; there is no line {size + 1}",
        "f.txt:1:0": f"f.txt hunk 1 has {lines}; there is no line 0",
        f"f.txt:1:{context + 1}": (
            f"f.txt hunk 1 line {context + 1} is context, neither added nor removed; only "
            "changed lines can be decided"
        ),
        "f.txt:1:3,a": "lines of f.txt hunk 1 are numbers and ranges such as 3,5-7; 'a' is neither",
        f"f.txt:1:{changed + 1}-{changed}": (
            f"lines of f.txt hunk 1: the range {changed + 1}-{changed} runs backwards; write "
            f"{changed}-{changed + 1}"
        ),
        "new.txt:1:1": "new.txt is taken whole; it has no lines to decide",
        "old.txt": "the run's diff has no file 'old.txt'; its files: f.txt, new.txt",
    }
    for text, message in said.items():
        with pytest.raises(BadSpec) as refused:
            parse_spec(patch, text)
        assert str(refused.value) == message, text


async def test_engine_merges_a_hunk_without_its_debugging_line(tmp_path: Path) -> None:
    repo = debug_repo(tmp_path)
    engine = await Engine.open(repo, cli_env(), load_config(repo / CONFIG_NAME))
    try:
        run = await engine.start_run("fix")
        await engine.wait(run.id)
        patch = await engine.patch(run.id)
        (hunk,) = patch.files[0].hunks
        debug = next(i for i, line in enumerate(hunk.lines) if "debug" in line.text)
        selection = Selection(patch)
        selection.toggle_line(hunk.key, debug)
        tally = selection.tally(shown={hunk.key})
        await engine.merge(run.id, reject=selection.rejected_patch() or "", review=tally)
        merged = await engine.history.run(run.id)
        assert merged.review == tally and merged.review.unread_hunks == 0
    finally:
        await engine.close()
    assert git(repo, "show", "main:shapes/area.py") == FIXED
    assert git(repo, "status", "--porcelain") == ""


def test_cli_review_rejects_a_line_and_merge_lands_exactly_that(tmp_path: Path) -> None:
    repo = debug_repo(tmp_path)
    assert run_cli(repo, "run", "fix").code == 0
    run_id = json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"]
    shown = run_cli(repo, "review", run_id, "--show")
    assert shown.code == 0, shown.stderr
    position = next(
        line.split()[0] for line in shown.stdout.splitlines() if "print('debug'" in line
    )
    bad = run_cli(repo, "review", run_id, "--reject", "shapes/nope.py")
    assert bad.code == 2 and bad.stderr.count("\n") == 1 and "shapes/area.py" in bad.stderr
    bad = run_cli(repo, "review", run_id, "--reject", "shapes/area.py:2")
    assert bad.code == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr == "looptui: shapes/area.py has 1 hunk (1); there is no hunk 2\n"
    bad = run_cli(repo, "review", run_id, "--reject", "shapes/area.py:1:1")
    assert bad.code == 2 and "context" in bad.stderr
    done = run_cli(repo, "review", run_id, "--reject", f"shapes/area.py:1:{position}")
    assert done.code == 0, done.stderr
    assert f"but lines {position} rejected" in done.stdout
    assert "1 line inside accepted hunks" in done.stdout
    merged = run_cli(repo, "merge", run_id)
    assert merged.code == 0, merged.stderr
    assert git(repo, "show", "main:shapes/area.py") == FIXED
    (status,) = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["review"]["decided_hunks"] == 1 and status["review"]["unread_lines"] == 0
    # what the run changed, the rejected line with it: lines reviewed, not lines landed
    changed = status["review"]["lines"]
    assert changed == 3
    assert (
        f"loop fix: {changed} changed lines in its merged runs (landed or left out), 0 of them"
        in (run_cli(repo, "status").stdout)
    )


def test_require_decisions_refuses_until_every_hunk_is_decided(tmp_path: Path) -> None:
    repo = debug_repo(tmp_path, require_decisions=True)
    assert run_cli(repo, "run", "fix").code == 0
    run_id = json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"]
    refused = run_cli(repo, "merge", run_id)
    assert refused.code == 2 and refused.stderr.count("\n") == 1
    assert "1 hunk is undecided and review.require_decisions is set" in refused.stderr
    landed = run_cli(repo, "review", run_id, "--accept", "shapes/area.py", "--merge")
    assert landed.code == 0, landed.stderr
    assert (
        "merged run" in landed.stdout
        and "every hunk was decided or under the review cursor" in landed.stdout
    )
    assert "debug" in git(repo, "show", "main:shapes/area.py")
    (status,) = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["status"] == "merged" and status["review"]["decided_hunks"] == 1


def kept_rows(repo: Path) -> list[tuple[str, str, float]]:
    """The review decisions the store keeps, every run's, read apart from looptui."""
    with sqlite3.connect(repo / ".git/looptui/store.db") as db:
        return db.execute("SELECT run_id, decisions, updated_at FROM review_decisions").fetchall()


@pytest.mark.parametrize("end", ["merge", "discard"])
def test_a_merged_or_discarded_run_shows_its_diff_and_takes_no_decision(
    tmp_path: Path, end: str
) -> None:
    repo = debug_repo(tmp_path)
    assert run_cli(repo, "run", "fix").code == 0
    run_id = json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"]
    assert run_cli(repo, "review", run_id, "--accept", "shapes/area.py").code == 0
    ended = run_cli(repo, end, run_id, *(["--force"] if end == "discard" else []))
    assert ended.code == 0, ended.stderr
    state = "merged" if end == "merge" else "discarded"
    kept = kept_rows(repo)
    shown = run_cli(repo, "review", run_id, "--show")
    assert shown.code == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert first.startswith(f"run {run_id} is {state}"), shown.stdout
    assert "nothing is left to decide" in first
    assert "print('debug', width, height)" in shown.stdout  # the diff is still there to read
    assert "would land" not in shown.stdout and "lands:" not in shown.stdout
    assert "every hunk was decided" not in shown.stdout
    for options in (
        ["--reject", "shapes/area.py"],
        ["--accept", "shapes/area.py:1"],
        ["--reset"],
        ["--merge"],
    ):
        refused = run_cli(repo, "review", run_id, *options)
        assert refused.code == 2 and refused.stderr.count("\n") == 1, (options, refused)
        assert refused.stderr.startswith(f"looptui: run {run_id} is already {state}; ")
        assert options[0] in refused.stderr and refused.stdout == ""
    assert kept_rows(repo) == kept  # nothing written
    (status,) = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["status"] == state
