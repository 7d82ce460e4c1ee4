"""The coding tools of the API agents, confined to the run's worktree.

List, read, search, write and edit files, and run commands. Every path is resolved by
`confine`: absolute paths, `..` and symlinks that lead outside are refused, and so is git's
own `.git`. Listing and searching never follow a symlink out. A command runs with the
worktree as its directory, in its own process group, with a timeout and a cap on its
output. A tool's failure is an error result for the model to read, never an exception.

A reviewer (the evaluator) gets a read-only set: list, read and search, `git_diff` and
`git_log` of the change under review, and commands only when its loop allows them. A tool
outside the set is refused even when the model calls it by name. Both have the loop's skill
tools (`skill_tools`), which read the skills' own folders, never the worktree.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looptui.engine.process import WORKTREE_VARIABLE, Exit, stream_process
from looptui.engine.workspace.paths import PathEscape, confine
from looptui.words import counted

if TYPE_CHECKING:
    from looptui.engine.skills.model import Skill

MAX_READ_LINES = 2000
MAX_LISTED = 1000
MAX_MATCHES = 200
MAX_FILE_BYTES = 2_000_000  # larger files are not read or searched


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON Schema of the arguments


def _schema(required: list[str], **properties: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": kind, "description": text} for name, (kind, text) in properties.items()
        },
        "required": required,
    }


PATH = ("string", "a path relative to the repository root")
TOOLS = (
    Tool(
        "list_files",
        "List the files under a directory of the repository (recursively, .git excluded).",
        _schema([], path=("string", "a directory relative to the repository root; default .")),
    ),
    Tool(
        "read_file",
        "Read a text file, with line numbers. Use offset and limit for long files.",
        _schema(
            ["path"],
            path=PATH,
            offset=("integer", "the first line to read, from 1"),
            limit=("integer", f"how many lines (at most {MAX_READ_LINES})"),
        ),
    ),
    Tool(
        "search",
        "Search text files for a regular expression; answers path:line: text.",
        _schema(
            ["pattern"],
            pattern=("string", "a Python regular expression"),
            path=("string", "a directory or file to search; default ."),
        ),
    ),
    Tool(
        "write_file",
        "Create or overwrite a file with the given content.",
        _schema(["path", "content"], path=PATH, content=("string", "the whole new content")),
    ),
    Tool(
        "edit_file",
        "Replace the one occurrence of `old` in a file by `new`.",
        _schema(
            ["path", "old", "new"],
            path=PATH,
            old=("string", "text that occurs exactly once in the file"),
            new=("string", "its replacement"),
        ),
    ),
    Tool(
        "run_command",
        "Run a shell command in the repository root (tests, builds, git status...).",
        _schema(["command"], command=("string", "the command line")),
    ),
)


GIT_TOOLS = (
    Tool(
        "git_diff",
        "The diff of the change under review (base..commit), of one path or of all.",
        _schema([], path=("string", "a file or directory to limit the diff to; default all")),
    ),
    Tool(
        "git_log",
        "The commits of the change under review (base..commit), with the files they touch.",
        _schema([]),
    ),
)
READ_ONLY_TOOLS = frozenset({"list_files", "read_file", "search"})
_REVISION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/~^-]{0,199}$")  # a commit, never an option


def toolset(*, read_only: bool, commands: bool, review: bool) -> tuple[Tool, ...]:
    """The tools an agent is given: the coding set, or a reviewer's read-only set (commands
    only when allowed, the git tools when there is a change to review)."""
    if not read_only:
        return TOOLS
    allowed = READ_ONLY_TOOLS | ({"run_command"} if commands else set())
    chosen = [tool for tool in TOOLS if tool.name in allowed]
    return (*chosen, *(GIT_TOOLS if review else ()))


class ToolError(Exception):
    """What went wrong, for the model to read."""


class Toolbox:
    """The tools, bound to one worktree, environment and set of limits."""

    def __init__(
        self,
        worktree: Path,
        environ: Mapping[str, str],
        *,
        command_timeout: float = 120.0,
        output_cap: int = 30_000,
        tools: tuple[Tool, ...] = TOOLS,
        review_range: tuple[str, str] | None = None,
        skills: Sequence[Skill] = (),
    ) -> None:
        self.worktree = worktree.resolve()
        self.environ = environ
        self.command_timeout = command_timeout
        self.output_cap = output_cap
        self.tools = tools
        self.review_range = review_range  # (base, commit) for git_diff and git_log
        self.skills = tuple(skills)  # for load_skill and read_skill_file

    async def call(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        """Run a tool; returns its output and whether it failed."""
        try:
            if name not in {tool.name for tool in self.tools}:  # a write tool to a reviewer
                names = ", ".join(tool.name for tool in self.tools)
                raise ToolError(f"unknown tool {name!r}; the tools are {names}")
            if name == "run_command":  # capped as it is read
                return await self.run_command(_text(arguments, "command")), False
            if name == "search":
                return self._cap(await self.search(arguments)), False
            if name in ("git_diff", "git_log"):  # capped as it is read
                return await self.git(name, arguments), False
            if name in ("load_skill", "read_skill_file"):  # from the skill's folder
                # imported here: the skill tools build on Tool and ToolError above
                from looptui.engine.agents.skill_tools import call_skill_tool

                output = await asyncio.to_thread(call_skill_tool, self.skills, name, arguments)
                return self._cap(output), False
            if name not in _FILE_TOOLS:
                raise ToolError(f"unknown tool {name!r}; the tools are {_names()}")
            output = await asyncio.to_thread(_FILE_TOOLS[name], self, arguments)
        except ToolError as exc:
            return (str(exc) if name == "run_command" else self._cap(str(exc))), True
        except PathEscape as exc:
            return self._cap(str(exc)), True
        except (OSError, UnicodeDecodeError) as exc:
            return self._cap(f"{name} failed: {exc}"), True
        except Exception as exc:  # a bug here too is for the model to read, not a crash
            return self._cap(f"{name} failed: {type(exc).__name__}: {exc}"), True
        return self._cap(output), False

    # -- files ---------------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return confine(self.worktree, relative)

    def list_files(self, arguments: Mapping[str, Any]) -> str:
        top = self.path(str(arguments.get("path") or "."))
        if not top.is_dir():
            raise ToolError(f"{arguments.get('path')!r} is not a directory")
        found: list[str] = []
        for directory, subdirectories, files in os.walk(top):  # does not follow symlinks
            subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
            for file in sorted(files):
                found.append(str((Path(directory) / file).relative_to(self.worktree)))
                if len(found) >= MAX_LISTED:
                    return "\n".join(found) + f"\n[... more than {MAX_LISTED} files ...]"
        return "\n".join(found) or "(no files)"

    def read_file(self, arguments: Mapping[str, Any]) -> str:
        path = self._file(_text(arguments, "path"))
        offset = max(1, _number(arguments, "offset", 1))
        limit = min(MAX_READ_LINES, max(1, _number(arguments, "limit", MAX_READ_LINES)))
        lines = path.read_text(encoding="utf-8").splitlines()
        shown = lines[offset - 1 : offset - 1 + limit]
        text = "\n".join(f"{offset + i:6}\t{line}" for i, line in enumerate(shown))
        rest = len(lines) - (offset - 1 + len(shown))
        return text + (f"\n[... {rest} more lines ...]" if rest > 0 else "")

    async def search(self, arguments: Mapping[str, Any]) -> str:
        """Matches of a regular expression, found by a child process with a time limit: a
        pattern that backtracks without end is killed with it, not left running here."""
        pattern = _text(arguments, "pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"bad regular expression: {exc}") from None
        top = self.path(str(arguments.get("path") or "."))
        argv = [sys.executable, "-c", _SEARCH, pattern, str(top), str(self.worktree)]
        exit_status = Exit()
        matches: list[str] = []
        try:
            async with asyncio.timeout(self.command_timeout):
                lines = stream_process(argv, self.worktree, {}, exit_status, max_lines=None)
                async for line in lines:
                    if line.stream == "stdout" and len(matches) <= MAX_MATCHES:
                        matches.append(line.text)
        except TimeoutError:
            raise ToolError(
                f"the search took longer than {self.command_timeout:g}s and was stopped "
                "(a pattern that backtracks a lot?)"
            ) from None
        if len(matches) > MAX_MATCHES:
            return "\n".join(matches[:MAX_MATCHES]) + f"\n[... more than {MAX_MATCHES} ...]"
        return "\n".join(matches) or "(no matches)"

    def write_file(self, arguments: Mapping[str, Any]) -> str:
        relative = _text(arguments, "path")
        content = arguments.get("content")
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        path = self.path(relative)
        if path.exists() and not path.is_file():
            raise ToolError(f"{relative} is not a regular file")  # a directory, a FIFO...
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path(relative)  # the directories just made cannot be links, but check again
        _write(path, content)
        return f"wrote {relative} ({counted(len(content.splitlines()), 'line')})"

    def edit_file(self, arguments: Mapping[str, Any]) -> str:
        relative = _text(arguments, "path")
        old, new = arguments.get("old"), arguments.get("new")
        if not isinstance(old, str) or not old or not isinstance(new, str):
            raise ToolError("old must be non-empty text and new must be text")
        path = self._file(relative)
        text = path.read_text(encoding="utf-8")
        count = text.count(old)
        if count != 1:
            raise ToolError(f"`old` occurs {count} times in {relative}; it must occur once")
        _write(path, text.replace(old, new))
        return f"edited {relative}"

    def _file(self, relative: str) -> Path:
        path = self.path(relative)
        if not path.is_file():
            raise ToolError(f"{relative} is not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ToolError(f"{relative} is larger than {MAX_FILE_BYTES} bytes")
        return path

    # -- git, for a reviewer --------------------------------------------------------------------

    async def git(self, name: str, arguments: Mapping[str, Any]) -> str:
        """`git diff` or `git log` of the review range, run without a shell, with the worktree
        given explicitly, no external diff or textconv programs, and a time limit."""
        if self.review_range is None:
            raise ToolError(f"{name}: there is no change under review")
        base, commit = self.review_range
        if not (_REVISION.match(base) and _REVISION.match(commit)):
            raise ToolError(f"{name}: the review range is not a pair of commits")
        argv = ["git", "--no-pager", "-C", str(self.worktree)]
        if name == "git_log":
            argv += ["log", "--no-color", "--stat", f"{base}..{commit}"]
        else:
            argv += ["diff", "--no-color", "--no-ext-diff", "--no-textconv", f"{base}..{commit}"]
            if arguments.get("path"):
                relative = str(arguments["path"])
                inside = self.path(relative).relative_to(self.worktree)
                argv += ["--", f":(literal){inside.as_posix() or '.'}"]
        # git's own variables (GIT_DIR...) would point it elsewhere than the worktree
        environ = {k: v for k, v in self.environ.items() if not k.startswith("GIT_")}
        environ.setdefault("PATH", os.defpath)
        exit_status = Exit()
        lines: list[str] = []
        errors: list[str] = []
        kept = seen = 0
        try:
            async with asyncio.timeout(self.command_timeout):
                async for line in stream_process(argv, self.worktree, environ, exit_status):
                    if line.stream != "stdout":
                        errors.append(line.text)
                        continue
                    seen += len(line.text) + 1
                    if kept < self.output_cap:  # the rest is counted, not kept
                        lines.append(line.text)
                        kept += len(line.text) + 1
        except TimeoutError:
            raise ToolError(f"{name} took longer than {self.command_timeout:g}s") from None
        if exit_status.code != 0:
            why = "; ".join(errors[-3:])
            raise ToolError(f"{name} failed (exit status {exit_status.code}): {why}")
        return self._cap("\n".join(lines), seen) or "(empty)"

    # -- commands ------------------------------------------------------------------------------

    async def run_command(self, command: str) -> str:
        environ = {**self.environ, WORKTREE_VARIABLE: str(self.worktree)}
        argv = ["/bin/sh", "-c", command]  # the model's command line is the tool's input
        exit_status = Exit()
        lines: list[str] = []
        kept = seen = 0
        try:
            async with asyncio.timeout(self.command_timeout):
                async for line in stream_process(argv, self.worktree, environ, exit_status):
                    seen += len(line.text) + 1
                    if kept < self.output_cap:  # the rest is counted, not kept
                        lines.append(line.text)
                        kept += len(line.text) + 1
        except TimeoutError:
            so_far = self._cap("\n".join(lines), seen)
            raise ToolError(
                f"the command timed out after {self.command_timeout:g}s and was killed; "
                f"its output so far:\n{so_far}"
            ) from None
        output = self._cap("\n".join(lines), seen)
        if exit_status.code != 0:
            raise ToolError(f"exit status {exit_status.code}\n{output}")
        return output or "(no output)"

    def _cap(self, text: str, total: int = 0) -> str:
        """`text` cut to the output cap, saying how much of `total` (or of it) is left out."""
        total = max(total, len(text))
        if total <= self.output_cap:
            return text
        cut = total - self.output_cap
        return f"{text[: self.output_cap]}\n[... {cut} more characters cut ...]"


_FILE_TOOLS = {
    "list_files": Toolbox.list_files,
    "read_file": Toolbox.read_file,
    "write_file": Toolbox.write_file,
    "edit_file": Toolbox.edit_file,
}


# The search, run by a child Python: walks without following links, skips .git and anything
# that is not a regular file (a FIFO would block), and prints path:line: text per match.
_SEARCH = f"""
import os, re, stat, sys
pattern, top, root = re.compile(sys.argv[1]), sys.argv[2], sys.argv[3]
def files():
    if os.path.isfile(top):
        yield top
        return
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
        for name in sorted(names):
            yield os.path.join(directory, name)
found = 0
for path in files():
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_size > {MAX_FILE_BYTES}:
        continue
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        continue
    relative = os.path.relpath(path, root)
    for number, line in enumerate(lines, start=1):
        if pattern.search(line):
            print(f"{{relative}}:{{number}}: {{line[:300]}}", flush=True)
            found += 1
            if found > {MAX_MATCHES}:
                sys.exit(0)
"""


def _write(path: Path, content: str) -> None:
    """Write a confined path without following a link, or waiting on a FIFO, made since it
    was checked (by a command the model left running, say)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
    with os.fdopen(os.open(path, flags, 0o644), "w", encoding="utf-8") as handle:
        handle.write(content)


def _names() -> str:
    return ", ".join(tool.name for tool in TOOLS)


def _text(arguments: Mapping[str, Any], key: str) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not value:
        raise ToolError(f"{key} must be a non-empty string")
    return value


def _number(arguments: Mapping[str, Any], key: str, default: int) -> int:
    value = arguments.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"{key} must be a whole number")
    return value
