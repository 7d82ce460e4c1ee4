"""Diff review: parsing real `git diff` output, decisions, partial patches and reverting hunks.

Every diff here is made by git in a temporary repository; every patch built is checked by
`git apply` against a private index, and results are compared as git trees.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from conftest import GIT_IDENTITY, git, make_repo
from looptui.engine.errors import WorkspaceError
from looptui.engine.workspace import (
    Decision,
    FileStatus,
    HunkKey,
    LineKind,
    Patch,
    PatchParseError,
    Repository,
    Selection,
    SelectionCounts,
    build_patch,
    parse_patch,
)

STORY = "".join(f"line {n}\n" for n in range(1, 31))
# Line 3 becomes two lines and line 25 becomes two: two hunks, each one line longer.
STORY_EDITED = STORY.replace("line 3\n", "LINE 3\nline 3b\n").replace(
    "line 25\n", "line 25a\nline 25b\n"
)
STORY_FIRST_ONLY = STORY.replace("line 3\n", "LINE 3\nline 3b\n")
STORY_SECOND_ONLY = STORY.replace("line 25\n", "line 25a\nline 25b\n")
TEN = "".join(f"row {n}\n" for n in range(1, 11))

Changes = Mapping[str, str | bytes | None]


def run_git(
    root: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> bytes:
    result = subprocess.run(
        ["git", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        check=False,
        env={**os.environ, **GIT_IDENTITY, **(env or {})},
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout


def commit(
    root: Path,
    changes: Changes,
    executable: tuple[str, ...] = (),
    symlinks: Mapping[str, str] | None = None,
    message: str = "change",
) -> str:
    """Write (str or bytes), delete (None) and commit; return the commit."""
    for relative, content in changes.items():
        target = root / relative
        if content is None:
            target.unlink()
            continue
        if target.is_symlink():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    for relative, points_to in (symlinks or {}).items():
        (root / relative).unlink(missing_ok=True)
        os.symlink(points_to, root / relative)
    run_git(root, "add", "--all")
    for relative in executable:
        run_git(root, "update-index", "--chmod=+x", "--", relative)
    run_git(root, "commit", "--quiet", "--allow-empty", "-m", message)
    return run_git(root, "rev-parse", "HEAD").decode().strip()


def tree_of(root: Path, commitish: str) -> str:
    return run_git(root, "rev-parse", f"{commitish}^{{tree}}").decode().strip()


def tree_with(
    root: Path, commitish: str, changes: Changes, modes: Mapping[str, str] | None = None
) -> str:
    """The tree of `commitish` with `changes` made, built by hand in a private index."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        run_git(root, "read-tree", commitish, env=env)
        for path, content in changes.items():
            if content is None:
                run_git(root, "update-index", "--force-remove", "--", path, env=env)
                continue
            data = content.encode() if isinstance(content, str) else content
            blob = run_git(root, "hash-object", "-w", "--stdin", stdin=data).decode().strip()
            mode = (modes or {}).get(path, "100644")
            run_git(root, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        return run_git(root, "write-tree", env=env).decode().strip()


def applied(root: Path, commitish: str, patch_text: str, reverse: bool = False) -> str:
    """The tree of `commitish` with `patch_text` applied by `git apply`; fails on any offset."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        run_git(root, "read-tree", commitish, env=env)
        patch_file = Path(scratch) / "p.patch"
        patch_file.write_bytes(patch_text.encode("utf-8", "surrogateescape"))
        args = ["apply", "--cached", "--verbose", *(["-R"] if reverse else []), str(patch_file)]
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, env={**os.environ, **env}
        )
        assert result.returncode == 0, result.stderr
        assert "offset" not in result.stderr, result.stderr  # every hunk header fits exactly
        return run_git(root, "write-tree", env=env).decode().strip()


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    files = {"story.txt": STORY, "notes.txt": "alpha\nbeta\n", "ten.txt": TEN}
    return Repository(make_repo(tmp_path / "repo", files))


def review(repository: Repository, base: str, head: str) -> Patch:
    return parse_patch(repository.review_diff(base, head))


def head_of(repository: Repository) -> str:
    # `Repository.head_of` is for runs' worktrees only (it refuses anything else)
    return repository.branch_commit(repository.current_branch())


# -- parsing ---------------------------------------------------------------------------------


def test_a_modified_file_has_one_key_per_hunk_with_line_numbers(
    repository: Repository,
) -> None:
    base = head_of(repository)
    head = commit(repository.root, {"story.txt": STORY_EDITED})

    patch = review(repository, base, head)

    (file,) = patch.files
    assert (file.status, file.old_path, file.new_path, file.path) == (
        FileStatus.MODIFIED,
        "story.txt",
        "story.txt",
        "story.txt",
    )
    assert file.file_key is None and file.split and not file.binary
    first, second = file.hunks
    assert (first.old_start, first.old_count, first.new_start, first.new_count) == (1, 6, 1, 7)
    assert (second.old_start, second.old_count, second.new_start, second.new_count) == (
        22,
        7,
        23,
        8,
    )
    assert first.section == "" and second.section == "line 21"  # git's heading: line above
    assert [(line.kind, line.text, line.old_number, line.new_number) for line in first.lines] == [
        (LineKind.CONTEXT, "line 1", 1, 1),
        (LineKind.CONTEXT, "line 2", 2, 2),
        (LineKind.REMOVED, "line 3", 3, None),
        (LineKind.ADDED, "LINE 3", None, 3),
        (LineKind.ADDED, "line 3b", None, 4),
        (LineKind.CONTEXT, "line 4", 4, 5),
        (LineKind.CONTEXT, "line 5", 5, 6),
        (LineKind.CONTEXT, "line 6", 6, 7),
    ]
    assert first.header == "@@ -1,6 +1,7 @@"
    assert (first.added, first.removed, file.added, file.removed) == (2, 1, 4, 2)
    assert (patch.added, patch.removed) == (4, 2)
    assert file.keys == (HunkKey("story.txt", 0), HunkKey("story.txt", 1))
    assert [hunk.key for hunk in file.hunks] == list(file.keys) == list(patch.keys)
    assert list(patch) == [file] and len(patch) == 1
    assert [(f.path, h.key) for f, h in patch.hunks()] == [("story.txt", k) for k in file.keys]


def test_added_deleted_and_empty_files_are_taken_whole(repository: Repository) -> None:
    base = head_of(repository)
    head = commit(repository.root, {"fresh.txt": "brand new\n", "notes.txt": None, "empty": ""})

    files = {file.path: file for file in review(repository, base, head)}

    fresh, notes, empty = files["fresh.txt"], files["notes.txt"], files["empty"]
    assert (fresh.status, fresh.old_path, fresh.new_path, fresh.new_mode) == (
        FileStatus.ADDED,
        None,
        "fresh.txt",
        "100644",
    )
    assert (notes.status, notes.old_path, notes.new_path) == (FileStatus.DELETED, "notes.txt", None)
    assert (empty.status, empty.hunks, empty.labels) == (FileStatus.ADDED, (), ())
    for file in (fresh, notes, empty):
        assert file.keys == (HunkKey(file.path, 0),) and file.file_key == file.keys[0]
        assert not file.split
        assert all(hunk.key == file.file_key for hunk in file.hunks)
    assert [line.text for line in notes.hunks[0].lines] == ["alpha", "beta"]

    # an empty file deleted (on its own: with an empty file added, git calls it a rename)
    gone = commit(repository.root, {"empty": None})
    (deleted,) = review(repository, head, gone)
    assert (deleted.status, deleted.path, deleted.hunks) == (FileStatus.DELETED, "empty", ())


def test_renames_with_and_without_changes(repository: Repository) -> None:
    base = head_of(repository)
    head = commit(
        repository.root,
        {
            "notes.txt": None,
            "docs/notes.txt": "alpha\nbeta\n",
            "ten.txt": None,
            "renamed ten.txt": TEN.replace("row 9\n", "row nine\n"),
        },
    )

    files = {file.path: file for file in review(repository, base, head)}

    pure, changed = files["docs/notes.txt"], files["renamed ten.txt"]
    assert (pure.status, pure.old_path, pure.new_path, pure.similarity) == (
        FileStatus.RENAMED,
        "notes.txt",
        "docs/notes.txt",
        100,
    )
    assert pure.hunks == () and pure.keys == (HunkKey("docs/notes.txt", 0),)
    assert (changed.status, changed.old_path, changed.new_path) == (
        FileStatus.RENAMED,
        "ten.txt",
        "renamed ten.txt",
    )
    assert changed.similarity is not None and 50 <= changed.similarity < 100
    # the rename itself and the hunk are decided apart
    assert changed.file_key == HunkKey("renamed ten.txt", 0)
    assert changed.keys == (HunkKey("renamed ten.txt", 0), HunkKey("renamed ten.txt", 1))
    assert changed.split and changed.hunks[0].key == HunkKey("renamed ten.txt", 1)


def test_mode_changes_with_and_without_content(repository: Repository) -> None:
    base = head_of(repository)
    head = commit(
        repository.root,
        {"ten.txt": TEN.replace("row 1\n", "#!/bin/sh\n")},
        executable=("ten.txt", "notes.txt"),
    )

    files = {file.path: file for file in review(repository, base, head)}

    for file in files.values():
        assert (file.status, file.old_mode, file.new_mode) == (
            FileStatus.MODE_CHANGED,
            "100644",
            "100755",
        )
    assert files["notes.txt"].hunks == () and len(files["notes.txt"].keys) == 1
    assert files["ten.txt"].keys == (HunkKey("ten.txt", 0), HunkKey("ten.txt", 1))


def test_binary_files_with_and_without_their_data(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {"logo.bin": b"\x00\x01\x02 old"})
    head = commit(root, {"logo.bin": b"\x00\x01\x02 new", "added.bin": b"\xff\x00"})

    with_data = {file.path: file for file in review(repository, base, head)}
    described = {file.path: file for file in parse_patch(git(root, "diff", base, head))}

    for files in (with_data, described):
        assert files["logo.bin"].status is FileStatus.MODIFIED
        assert files["added.bin"].status is FileStatus.ADDED
        for file in files.values():
            assert file.binary and file.hunks == () and len(file.keys) == 1
    assert with_data["logo.bin"].binary_patch[0] == "GIT binary patch"
    assert described["logo.bin"].binary_patch == ()
    assert any(line.startswith("Binary files ") for line in described["logo.bin"].header)
    patch = review(repository, base, head)
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_quoted_names_and_names_with_spaces(repository: Repository) -> None:
    root = repository.root
    odd = {"with space.txt": "a\nb\n", "naïve ünï.txt": TEN, 'say "hi".txt': "hi\n"}
    base = commit(root, {**odd, "tab\there.txt": "t\n"})
    head = commit(
        root,
        {
            "with space.txt": "a\nB\n",
            'say "hi".txt': "hello\n",
            "tab\there.txt": "T\n",
            "naïve ünï.txt": None,
            "dir with space/ëh.txt": TEN.replace("row 5\n", "row five\n"),
        },
    )

    text = repository.review_diff(base, head)
    files = {file.path: file for file in parse_patch(text)}

    assert '"a/say \\"hi\\".txt"' in text and "\\303\\257" in text  # git did quote them
    assert set(files) == {
        "with space.txt",
        'say "hi".txt',
        "tab\there.txt",
        "dir with space/ëh.txt",
    }
    renamed = files["dir with space/ëh.txt"]
    assert (renamed.status, renamed.old_path) == (FileStatus.RENAMED, "naïve ünï.txt")
    assert files["with space.txt"].old_path == "with space.txt"
    patch = parse_patch(text)
    assert build_patch(patch, patch.keys) == text
    assert applied(root, base, text) == tree_of(root, head)
    # the content of the rename without the rename: a header made here, quoted as git would
    hunk_only = build_patch(patch, [renamed.keys[1]])
    assert hunk_only.startswith('diff --git "a/na\\303\\257ve \\303\\274n\\303\\257.txt"')
    expected = {"naïve ünï.txt": TEN.replace("row 5\n", "row five\n")}
    assert applied(root, base, hunk_only) == tree_with(root, base, expected)


def test_missing_newline_at_end_of_file(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {"tail.txt": "first\nend", "gain.txt": "x"})
    head = commit(root, {"tail.txt": "first\nend\nmore", "gain.txt": "x\n"})

    files = {file.path: file for file in review(repository, base, head)}

    tail = files["tail.txt"].hunks[0].lines
    assert [(line.kind, line.text, line.missing_newline) for line in tail] == [
        (LineKind.CONTEXT, "first", False),
        (LineKind.REMOVED, "end", True),
        (LineKind.ADDED, "end", False),
        (LineKind.ADDED, "more", True),
    ]
    gain = files["gain.txt"].hunks[0].lines
    assert [(line.kind, line.missing_newline) for line in gain] == [
        (LineKind.REMOVED, True),
        (LineKind.ADDED, False),
    ]
    patch = review(repository, base, head)
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_hunk_lines_that_look_like_file_headers(repository: Repository) -> None:
    root = repository.root
    tricky = "-- a/x\n++ b/x\n@@ -1 +1 @@\ndiff --git a/y b/y\nplain\n"
    base = commit(root, {"tricky.txt": tricky})
    head = commit(
        root,
        {
            "tricky.txt": tricky.replace("-- a/x\n", "++ b/x\n").replace("plain\n", "-- end\n"),
            "zzz.txt": "-- new\n++ new\n",
        },
    )

    text = repository.review_diff(base, head)
    patch = parse_patch(text)

    assert "\n--- a/x\n+++ b/x\n" in text  # a removal and an addition that look like labels
    assert [file.path for file in patch] == ["tricky.txt", "zzz.txt"]
    (hunk,) = patch.files[0].hunks
    assert [(line.kind, line.text) for line in hunk.lines] == [
        (LineKind.REMOVED, "-- a/x"),
        (LineKind.ADDED, "++ b/x"),
        (LineKind.CONTEXT, "++ b/x"),
        (LineKind.CONTEXT, "@@ -1 +1 @@"),
        (LineKind.CONTEXT, "diff --git a/y b/y"),
        (LineKind.REMOVED, "plain"),
        (LineKind.ADDED, "-- end"),
    ]
    assert [line.text for line in patch.files[1].hunks[0].lines] == ["-- new", "++ new"]
    assert build_patch(patch, patch.keys) == text


def test_carriage_returns_and_form_feeds_stay_in_the_line(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {"dos.txt": "a\r\nb\r\nc\r\n", "page.txt": "one\x0ctwo\nthree\n"})
    head = commit(root, {"dos.txt": "a\r\nB\r\nc\r\n", "page.txt": "one\x0cTWO\nthree\n"})

    patch = review(repository, base, head)

    dos, page = patch.files
    assert [line.text for line in dos.hunks[0].lines] == ["a\r", "b\r", "B\r", "c\r"]
    assert [line.text for line in page.hunks[0].lines] == ["one\x0ctwo", "one\x0cTWO", "three"]
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_empty_context_lines_of_suppress_blank_empty(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {"gaps.txt": "a\n\nb\n\nc\n"})
    head = commit(root, {"gaps.txt": "a\n\nB\n\nc\n"})
    text = git(root, "-c", "diff.suppressBlankEmpty=true", "diff", base, head)
    assert "\n\n" in text  # git printed the blank context lines without their space

    patch = parse_patch(text)

    kinds = [line.kind for line in patch.files[0].hunks[0].lines]
    assert kinds.count(LineKind.CONTEXT) == 4
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_a_copy_is_taken_whole(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"ten copy.txt": TEN.replace("row 3\n", "row three\n")})
    text = git(root, "diff", "-C", "--find-copies-harder", base, head)

    (copy,) = parse_patch(text)

    assert (copy.status, copy.old_path, copy.new_path) == (
        FileStatus.COPIED,
        "ten.txt",
        "ten copy.txt",
    )
    assert copy.keys == (HunkKey("ten copy.txt", 0),) and not copy.split
    assert applied(root, base, build_patch(parse_patch(text), copy.keys)) == tree_of(root, head)


def test_a_type_change_is_one_unit(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {}, symlinks={"link": "story.txt"})
    head = commit(root, {"link": "now a file\n"})

    patch = review(repository, base, head)

    deletion, addition = patch.files
    assert (deletion.status, addition.status) == (FileStatus.DELETED, FileStatus.ADDED)
    assert deletion.old_mode == "120000"
    assert patch.keys == (HunkKey("link", 0),)
    assert deletion.file_key == addition.file_key == HunkKey("link", 0)
    assert patch.files_of(HunkKey("link", 0)) == (deletion, addition)
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_review_diff_overrides_config_that_would_break_it(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"story.txt": STORY_EDITED, "logo.bin": b"\x00\x01"})
    for key, value in {
        "diff.noprefix": "true",
        "diff.context": "0",
        "color.ui": "always",
        "diff.external": "false",
        "diff.renames": "false",
    }.items():
        git(root, "config", key, value)

    patch = review(repository, base, head)

    assert [file.path for file in patch] == ["logo.bin", "story.txt"]
    assert patch.files[0].binary_patch and patch.files[1].hunks[0].lines[0].text == "line 1"
    assert applied(root, base, build_patch(patch, patch.keys)) == tree_of(root, head)


def test_an_empty_diff_and_a_broken_one(repository: Repository) -> None:
    base = head_of(repository)
    empty = parse_patch(repository.review_diff(base, base))
    assert (empty.files, empty.keys, build_patch(empty, [])) == ((), (), "")

    head = commit(repository.root, {"story.txt": STORY_EDITED})
    text = repository.review_diff(base, head)
    with pytest.raises(PatchParseError, match="ends early"):
        parse_patch(text.rsplit("\n", 2)[0] + "\n")  # the last line cut off
    with pytest.raises(PatchParseError, match="unexpected"):
        parse_patch(text + "trailing junk\n")


# -- decisions -------------------------------------------------------------------------------


def test_selection_records_decisions_per_hunk_and_per_file(repository: Repository) -> None:
    base = head_of(repository)
    head = commit(repository.root, {"story.txt": STORY_EDITED, "fresh.txt": "new\n"})
    patch = review(repository, base, head)
    fresh, story = patch.files
    first, second = story.keys

    selection = Selection(patch)
    assert selection.counts() == SelectionCounts(accepted=0, rejected=0, undecided=3)
    assert not selection.all_decided and selection.decision(first) is Decision.UNDECIDED

    selection.accept(first)
    selection.reject(second)
    assert selection.file_decision(story) is None  # mixed
    assert selection.rejected() == (second,) and selection.accepted() == (first,)
    assert selection.undecided() == fresh.keys

    selection.reject_file(fresh)
    assert selection.all_decided and selection.file_decision(fresh) is Decision.REJECTED
    assert selection.rejected() == (fresh.keys[0], second)  # diff order
    assert selection.counts() == SelectionCounts(accepted=1, rejected=2, undecided=0)

    selection.accept_file(story)
    assert selection.file_decision(story) is Decision.ACCEPTED
    selection.reset(first)
    assert selection.decision(first) is Decision.UNDECIDED and not selection.all_decided
    selection.decide_all(Decision.ACCEPTED)
    assert selection.accepted() == patch.keys
    with pytest.raises(KeyError):
        selection.accept(HunkKey("story.txt", 7))


# -- partial patches -------------------------------------------------------------------------


def test_a_subset_applies_with_headers_renumbered_for_its_side(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"story.txt": STORY_EDITED})
    patch = review(repository, base, head)
    first, second = patch.keys

    forward = build_patch(patch, [second])
    backward = build_patch(patch, [second], reverse=True)

    # Forward it meets base, where hunk 1 is missing: its new side starts a line earlier.
    assert "@@ -22,7 +22,8 @@ line 21" in forward and "index " not in forward
    assert applied(root, base, forward) == tree_with(root, base, {"story.txt": STORY_SECOND_ONLY})
    # In reverse it meets head, where hunk 1 stays: its old side starts a line later.
    assert "@@ -23,7 +23,8 @@ line 21" in backward
    expected = tree_with(root, base, {"story.txt": STORY_FIRST_ONLY})
    assert applied(root, head, backward, reverse=True) == expected
    assert applied(root, base, build_patch(patch, [first])) == expected
    with pytest.raises(KeyError):
        build_patch(patch, [HunkKey("nope", 0)])


def test_a_rename_and_its_content_are_taken_apart(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    edited = TEN.replace("row 9\n", "row nine\n")
    head = commit(root, {"ten.txt": None, "moved.txt": edited})
    patch = review(repository, base, head)
    rename, content = patch.keys

    rename_only = tree_with(root, base, {"ten.txt": None, "moved.txt": TEN})
    content_only = tree_with(root, base, {"ten.txt": edited})
    assert applied(root, base, build_patch(patch, [rename])) == rename_only
    assert applied(root, base, build_patch(patch, [content])) == content_only
    both = build_patch(patch, [rename, content])
    assert applied(root, base, both) == tree_of(root, head)
    # taking one back out of head leaves the other
    assert applied(root, head, build_patch(patch, [content], reverse=True), True) == rename_only
    assert applied(root, head, build_patch(patch, [rename], reverse=True), True) == content_only


# -- reverting rejected hunks ----------------------------------------------------------------


def revert(repository: Repository, patch: Patch, head: str, rejected: list[HunkKey]) -> str:
    text = build_patch(patch, rejected, reverse=True)
    return repository.revert_hunks(head, text, "Take out what review rejected")


def test_revert_one_of_two_hunks(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"story.txt": STORY_EDITED})
    patch = review(repository, base, head)

    reverted = revert(repository, patch, head, [patch.keys[1]])

    assert tree_of(root, reverted) == tree_with(root, base, {"story.txt": STORY_FIRST_ONLY})
    assert git(root, "rev-parse", f"{reverted}^").strip() == head
    assert git(root, "log", "-1", "--format=%s", reverted).strip() == (
        "Take out what review rejected"
    )
    assert head_of(repository) == head  # no branch moved


def test_revert_a_new_file_a_binary_file_and_a_mode_change(repository: Repository) -> None:
    root = repository.root
    base = commit(root, {"logo.bin": b"\x00\x01 old"})
    head = commit(
        root,
        {"fresh.txt": "new\n", "logo.bin": b"\x00\x02 new", "story.txt": STORY_EDITED},
        executable=("notes.txt",),
    )
    patch = review(repository, base, head)
    keys = {file.path: file.keys for file in patch}

    reverted = revert(
        repository, patch, head, [*keys["fresh.txt"], *keys["logo.bin"], *keys["notes.txt"]]
    )

    assert tree_of(root, reverted) == tree_with(root, base, {"story.txt": STORY_EDITED})


@pytest.mark.parametrize("rejected", ["rename", "content", "both"])
def test_revert_parts_of_a_rename(repository: Repository, rejected: str) -> None:
    root = repository.root
    base = head_of(repository)
    edited = TEN.replace("row 2\n", "row two\n")
    head = commit(root, {"ten.txt": None, "moved.txt": edited})
    patch = review(repository, base, head)
    rename, content = patch.keys
    chosen = {"rename": [rename], "content": [content], "both": [rename, content]}[rejected]

    reverted = revert(repository, patch, head, chosen)

    expected: dict[str, Changes] = {
        "rename": {"ten.txt": edited},
        "content": {"ten.txt": None, "moved.txt": TEN},
        "both": {},
    }
    assert tree_of(root, reverted) == tree_with(root, base, expected[rejected])


def test_revert_hunks_of_the_last_iteration_only(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    first = commit(root, {"notes.txt": "alpha\nbeta\ngamma\n"}, message="iteration 1")
    head = commit(root, {"story.txt": STORY_EDITED}, message="iteration 2")
    patch = review(repository, first, head)

    reverted = revert(repository, patch, head, [patch.keys[0]])

    expected = {"notes.txt": "alpha\nbeta\ngamma\n", "story.txt": STORY_SECOND_ONLY}
    assert tree_of(root, reverted) == tree_with(root, base, expected)


def test_reverting_leaves_exactly_the_accepted_changes(repository: Repository) -> None:
    """For every unit of a diff with every kind of change: rejecting it (or all but it)
    leaves head holding exactly base plus the accepted units."""
    root = repository.root
    base = commit(
        root,
        {
            "with space.txt": TEN,
            "naïve.txt": TEN,
            "old name.txt": "stays the same\n",
            "logo.bin": b"\x00\x01 old",
            "script.sh": TEN,
            "mode_only.sh": "echo\n",
            "gone.txt": "delete me\n",
            "tail.txt": "first\nend",
            "dos.txt": "a\r\nb\r\n",
            "latin1.txt": b"caf\xe9\n",
        },
        symlinks={"link": "story.txt"},
    )
    head = commit(
        root,
        {
            "story.txt": STORY_EDITED,
            "with space.txt": TEN.replace("row 4\n", "row four\n"),
            "naïve.txt": None,
            'quoted "ü".txt': TEN.replace("row 8\n", "row eight\n"),
            "old name.txt": None,
            "new name.txt": "stays the same\n",
            "logo.bin": b"\x00\x02 new",
            "new.bin": b"\xff\xfe\x00",
            "script.sh": TEN.replace("row 1\n", "#!/bin/sh\n"),
            "gone.txt": None,
            "fresh.txt": "fresh content\n",
            "empty.txt": "",
            "tail.txt": "first\nend\nmore",
            "dos.txt": "a\r\nB\r\n",
            "latin1.txt": b"caf\xe9s\n",  # not UTF-8: must survive decoding and back
            "link": "a file now\n",
        },
        executable=("script.sh", "mode_only.sh"),
    )
    patch = review(repository, base, head)
    assert len(patch.keys) == 18
    assert {file.status for file in patch} == set(FileStatus) - {FileStatus.COPIED}
    assert patch.files_of(HunkKey("latin1.txt", 0))[0].hunks[0].lines[1].text == "caf\udce9s"

    for key in patch.keys:
        others = [k for k in patch.keys if k != key]
        for rejected, accepted in (([key], others), (others, [key])):
            reverted = revert(repository, patch, head, rejected)
            expected = applied(root, base, build_patch(patch, accepted))
            assert tree_of(root, reverted) == expected, (key, rejected)
    assert tree_of(root, revert(repository, patch, head, list(patch.keys))) == tree_of(root, base)


def test_a_revert_that_does_not_apply_is_refused(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"story.txt": STORY_EDITED})
    patch = review(repository, base, head)
    text = build_patch(patch, [patch.keys[0]], reverse=True)

    with pytest.raises(WorkspaceError) as refused:
        repository.revert_hunks(base, text, "nope")  # base does not hold the change

    message = str(refused.value)
    assert "do not apply" in message and "story.txt" in message and "\n" not in message
    with pytest.raises(WorkspaceError, match="patch is empty"):
        repository.revert_hunks(head, "", "nope")
    with pytest.raises(WorkspaceError, match="no such commit"):
        repository.revert_hunks("0" * 40, text, "nope")


def test_reverting_leaves_the_users_checkout_and_index_alone(repository: Repository) -> None:
    root = repository.root
    base = head_of(repository)
    head = commit(root, {"story.txt": STORY_EDITED, "fresh.txt": "new\n"})
    (root / "notes.txt").write_text("edited, not staged\n")
    (root / "ten.txt").write_text("staged\n")
    git(root, "add", "ten.txt")
    (root / "untracked.txt").write_text("mine\n")
    index = root / ".git" / "index"
    status, index_bytes = git(root, "status", "--porcelain"), index.read_bytes()
    files = {path: path.read_bytes() for path in root.iterdir() if path.is_file()}

    patch = review(repository, base, head)
    revert(repository, patch, head, list(patch.keys))

    assert git(root, "status", "--porcelain") == status
    assert index.read_bytes() == index_bytes
    assert {path: path.read_bytes() for path in root.iterdir() if path.is_file()} == files
    assert head_of(repository) == head
