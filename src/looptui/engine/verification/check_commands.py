"""Which files a loop's check commands run: editing them changes what "the tests pass" means.

`./run_tests.sh` and `python scripts/check.py` name their file; `make test` names a target of
the Makefile, `npm test` a script of package.json; `tox` and `nox` read their own files. The
reading is a best effort over shell words: a module run with `-m` names no file but its module
(a file added under that name would run instead), an inline `-c` program names nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;"}
_WRAPPERS = {"env", "exec", "time", "nice", "timeout", "xvfb-run", "npx"}
_RUNNERS = {"uv", "poetry", "pdm", "hatch", "pipenv", "rye"}  # `uv run CMD` and the like
_INTERPRETER = re.compile(r"(?:python|pypy)[\d.]*|bash|sh|zsh|dash|node|ruby|perl|deno")
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl")
_PACKAGE_MANAGERS = {"npm", "yarn", "pnpm", "bun"}
_WHOLE_FILE_TOOLS = {"tox": "tox.ini", "nox": "noxfile.py", "just": "justfile"}
_MAKEFILE_NAMES = {"Makefile", "makefile", "GNUmakefile"}


@dataclass(frozen=True)
class CheckFiles:
    """What the check commands run: whole files, and named parts of sectioned ones."""

    whole: frozenset[str] = frozenset()
    # file -> the Makefile targets or package.json scripts the commands name
    parts: dict[str, frozenset[str]] = field(default_factory=dict)
    # the top-level modules run with `python -m`
    modules: frozenset[str] = frozenset()
    # the Makefiles `make` reads: their variables count wherever they are set
    makefiles: frozenset[str] = frozenset()


def check_files(commands: Iterable[str]) -> CheckFiles:
    """The files, repository-relative, that `commands` (run from the root) execute."""
    whole: set[str] = set()
    parts: dict[str, set[str]] = {}
    modules: set[str] = set()
    makefiles: set[str] = set()
    for command in commands:
        for words in _simple_commands(command):
            module = _read_command(words, whole, parts)
            if module is not None:
                modules.add(module)
    for path in (*whole, *parts):
        if path.rsplit("/", 1)[-1] in _MAKEFILE_NAMES:
            makefiles.add(path)
    return CheckFiles(
        frozenset(whole),
        {path: frozenset(names) for path, names in parts.items()},
        frozenset(modules),
        frozenset(makefiles),
    )


def _simple_commands(command: str) -> list[list[str]]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: read what splits plainly
        tokens = command.split()
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def _read_command(words: list[str], whole: set[str], parts: dict[str, set[str]]) -> str | None:
    """Note the files `words` run in `whole` and `parts`; the top-level module it runs with
    `python -m`, if it does."""
    while words and (("=" in words[0] and not words[0].startswith("-")) or words[0] in _WRAPPERS):
        words = words[1:]
    if len(words) >= 2 and words[0] in _RUNNERS and words[1] == "run":
        words = words[2:]
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    args = words[1:]
    if program in ("make", "gmake"):
        makefile = _option_value(args, "-f") or "Makefile"
        targets = {arg for arg in args if not arg.startswith("-") and "=" not in arg}
        targets.discard(makefile)
        if targets:
            parts.setdefault(_normal(makefile), set()).update(targets)
        else:
            whole.add(_normal(makefile))
    elif program in _WHOLE_FILE_TOOLS:
        whole.add(_normal(_option_value(args, "-c") or _WHOLE_FILE_TOOLS[program]))
    elif program in _PACKAGE_MANAGERS:
        script = _package_script(args)
        if script is not None:
            parts.setdefault("package.json", set()).add(script)
    elif _INTERPRETER.fullmatch(program):
        module = _module_run(args) if program.startswith(("python", "pypy")) else None
        if module is not None:
            return module.split(".", 1)[0]
        if args and args[0] in ("-m", "-c", "-e"):
            return None
        script = next((arg for arg in args if not arg.startswith("-")), None)
        if script is not None and _looks_like_file(script):
            whole.add(_normal(script))
    elif "/" in words[0] or words[0].endswith(_SCRIPT_SUFFIXES):
        whole.add(_normal(words[0]))
    return None


def _package_script(args: list[str]) -> str | None:
    plain = [arg for arg in args if not arg.startswith("-")]
    if not plain:
        return None
    if plain[0] in ("test", "t"):
        return "test"
    if plain[0] in ("run", "run-script") and len(plain) > 1:
        return plain[1]
    if plain[0] in ("install", "ci", "exec", "dlx", "x", "add"):
        return None
    return plain[0]  # `yarn lint` runs the script "lint"


def _module_run(args: list[str]) -> str | None:
    """The module that interpreter arguments `args` run with `-m`: it ends the options."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-m":
            return args[index + 1] if index + 1 < len(args) else None
        if arg.startswith("-m"):
            return arg[2:]
        if not arg.startswith("-") or arg in ("-c", "-"):
            return None
        index += 2 if arg in ("-W", "-X") else 1  # the options that take a value
    return None


def _option_value(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg == option:
            return args[index + 1]
    return None


def _looks_like_file(word: str) -> bool:
    return "/" in word or word.endswith(_SCRIPT_SUFFIXES)


def _normal(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path
