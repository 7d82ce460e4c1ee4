"""The tamper guard's knowledge of test runners: one entry per family, and path globs.

Each `RunnerFamily` says where a language keeps its tests, how a test is defined, which
markers skip, expect-to-fail or deselect one, what an assertion looks like and which files
configure the runner. Adding a language is adding an entry to `FAMILIES`; tamper.py holds the
rules and knows no language.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

Patterns = tuple[re.Pattern[str], ...]


def _all(*patterns: str) -> Patterns:
    return tuple(re.compile(pattern) for pattern in patterns)


@dataclass(frozen=True)
class SectionedConfig:
    """A file that configures tests in some of its parts only (pyproject.toml, package.json).

    A changed line counts when the section it is in (the last line matching `header`, whose
    group 1 names it, in the hunk or in git's hunk heading) matches `sections`; when the
    section is not known (no header in sight, or a format without headers) the line's own
    text decides, by `lines`.
    """

    glob: str
    header: re.Pattern[str] | None
    sections: re.Pattern[str] | None
    lines: re.Pattern[str]
    # Lines that count in any section (a Makefile's variables, set anywhere, reach every
    # recipe); a section's own header is still judged by `sections`.
    anywhere: re.Pattern[str] | None = None


@dataclass(frozen=True)
class RunnerFamily:
    """What the tamper guard knows of one family of test runners."""

    name: str
    extensions: tuple[str, ...]  # the source files the content rules read
    test_paths: tuple[str, ...]  # globs of test files (any file there, data included)
    test_definition: re.Pattern[str]  # group "name" is the test's name
    # The marker patterns: a group "marker", where there is one, is what a flag quotes.
    skip_markers: Patterns
    xfail_markers: Patterns
    deselect_markers: Patterns  # code that keeps tests from being collected or run
    option_markers: Patterns  # options and settings that do: read in configuration files only
    assertions: Patterns
    expected_errors: Patterns  # assertions that something raises: named apart when removed
    trivial_statements: Patterns  # what an assertion is swapped for to always pass
    config_files: tuple[str, ...]  # globs of files that configure the runner as a whole
    sectioned_configs: tuple[SectionedConfig, ...] = ()
    comment: re.Pattern[str] | None = None  # a line that is only a comment
    early_exits: Patterns = ()  # a statement that ends a test before its assertions
    swallowing: Patterns = ()  # code that catches a failed assertion, wherever it is added
    guard_blocks: Patterns = ()  # blocks that may catch one: flagged inside existing tests
    patches: Patterns = ()  # code that replaces what the tests exercise, from the tests
    nested_definitions: Patterns = ()  # a function or class defined inside a test
    imports: Patterns = ()  # group "module" is the top-level module a test imports
    # The names of modules a test directory may hold (helpers); another added there may shadow
    # the code under test. None: the family has no such shadowing.
    test_modules: re.Pattern[str] | None = None
    # Plugins and hooks added to the runner, wherever they are: they can rewrite any result.
    plugin_markers: Patterns = ()
    plugin_options: Patterns = ()  # options that load one: read in configuration files only
    # The runner and its internals: a module added under one of these names replaces it.
    runner_modules: frozenset[str] = frozenset()
    # Code outside the tests that looks at or alters the runner: production code never needs to.
    runner_access: Patterns = ()


_TOML_OR_INI_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*(?:#.*)?$")

PYTHON = RunnerFamily(
    name="python",
    extensions=(".py",),
    test_paths=("test_*.py", "*_test.py", "**/tests/**", "**/test/**"),
    test_definition=re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>test\w*)\s*\("),
    # Anchored to where code stands, so that a test quoting a marker in a string is no skip.
    skip_markers=_all(
        r"^\s*@pytest\.mark\.skip(?:if)?\b",
        r"^\s*pytestmark\s*=.*\bpytest\.mark\.skip(?:if)?\b",
        r"\bmarks\s*=\s*[\[(]?\s*pytest\.mark\.skip(?:if)?\b",
        r"^\s*(?:\w+\s*=\s*)?pytest\.(?:skip|importorskip)\(",
        r"^\s*@unittest\.skip(?:If|Unless)?\b",
        r"^\s*self\.skipTest\(",
        r"^\s*raise\s+(?:unittest\.)?SkipTest\b",
    ),
    xfail_markers=_all(
        r"^\s*@pytest\.mark\.xfail\b",
        r"^\s*pytestmark\s*=.*\bpytest\.mark\.xfail\b",
        r"\bmarks\s*=\s*[\[(]?\s*pytest\.mark\.xfail\b",
        r"^\s*pytest\.xfail\(",
        r"^\s*@(?:unittest\.)?expectedFailure\b",
    ),
    deselect_markers=_all(
        r"^\s*collect_ignore(?:_glob)?\b",
        r"^\s*(?:async\s+)?def\s+(?P<marker>pytest_(?:collection_modifyitems|ignore_collect))\b",
    ),
    option_markers=_all(
        r"--deselect\b",
        r"(?<![\w-])-k(?![\w-])",
        r"--ignore(?:-glob)?\b",
        r"\bnorecursedirs\b",
        r"\bpython_(?:files|functions|classes)\b",
        r"\btestpaths\b",
        r"\baddopts\b",
    ),
    plugin_options=_all(
        # on a line that names pytest or its options, since `mkdir -p` loads no plugin
        r"(?:\bpytest\b|\bpy\.test\b|\baddopts\b|PYTEST_ADDOPTS).*?(?<![\w-])(?P<marker>-p)\s*\S",
        r"\b(?P<marker>PYTEST_(?:ADDOPTS|PLUGINS|DISABLE_PLUGIN_AUTOLOAD))\b",
    ),
    assertions=_all(r"^\s*assert\b", r"\bself\.assert\w+\(", r"\bself\.fail\("),
    expected_errors=_all(
        r"\bpytest\.raises\(", r"\bpytest\.warns\(", r"\bself\.assert(?:Raises|Warns)\w*\("
    ),
    trivial_statements=_all(
        r"^\s*(?:assert\s+(?:True|1|not\s+False)|pass|\.\.\.|return|self\.assertTrue\(\s*True\s*\))"
        r"\s*(?:#.*)?$"
    ),
    config_files=(
        "conftest.py",
        "pytest.toml",  # pytest >= 9 reads these before pytest.ini
        ".pytest.toml",
        "pytest.ini",
        ".pytest.ini",
        "tox.ini",
        "noxfile.py",
        ".coveragerc",
    ),
    sectioned_configs=(
        SectionedConfig(
            glob="pyproject.toml",
            header=_TOML_OR_INI_HEADER,
            sections=re.compile(
                r"^(?:tool\.(?:pytest|coverage|tox|nox|hatch\.envs\.[\w-]*test)"
                r"|project\.entry-points\.[\"']?pytest11)"
            ),
            lines=re.compile(
                r"^\s*(?:addopts|testpaths|python_files|python_functions|python_classes"
                r"|norecursedirs|filterwarnings|markers|minversion|required_plugins|fail_under"
                r"|legacy_tox_ini|envlist)\s*="
            ),
        ),
        SectionedConfig(
            glob="setup.cfg",
            header=_TOML_OR_INI_HEADER,
            sections=re.compile(r"^(?:tool:pytest|pytest|coverage:|tox)"),
            lines=re.compile(
                r"^\s*(?:addopts|testpaths|python_files|python_functions|norecursedirs)\s*="
            ),
        ),
    ),
    comment=re.compile(r"^\s*#"),
    early_exits=_all(r"^\s*return\b"),
    nested_definitions=_all(r"^\s*(?:async\s+)?(?:def|class)\s"),
    swallowing=_all(
        r"^\s*except\s*(?::|\(?[\w.,\s]*\b(?:AssertionError|Exception|BaseException)\b)",
        r"^\s*with\s+(?:contextlib\.)?suppress\(.*\b(?:AssertionError|Exception|BaseException)\b",
        r"^\s*with\s+pytest\.raises\(\s*(?:AssertionError|Exception|BaseException)\b",
    ),
    guard_blocks=_all(r"^\s*try\s*:", r"^\s*with\s+(?:contextlib\.)?suppress\("),
    patches=_all(
        r"\bmonkeypatch\.(?:setattr|setitem|delattr|delitem)\(",
        r"\bmock\.patch\b",
        r"(?<![\w.])patch(?:\.object|\.dict|\.multiple)?\(",
        r"(?<![\w.])(?:setattr|delattr)\(",
        r"^(?!self\.|cls\.)[A-Za-z_]\w*(?:\.\w+)+\s*=(?!=)",  # module.attribute = …, at the top
        r"\bglobals\(\)\s*\[",
        r"\bsys\.modules\s*\[",
        r"^\s*@pytest\.fixture\(.*\bautouse\s*=\s*True\b",
        # the import path changed: another module is imported under the name the tests use
        r"\bsys\.path\s*\.\s*(?:insert|append|extend)\(",
        r"\bsys\.path\s*(?:\[[^\]]*\]\s*)?(?:\+?=)(?!=)",
        r"\bsite\.addsitedir\(",
        r"\bPYTHONPATH\b",
    ),
    # Dotted only: `calc` in `from calc.totals import` is a package, no helper beside the tests.
    imports=_all(r"^\s*(?:from|import)\s+(?P<module>\w+)\.\w"),
    test_modules=re.compile(
        r"^(?:__init__|conftest|test_\w*|\w*_test|\w*(?:helper|util|fixture)\w*)$"
    ),
    plugin_markers=_all(
        r"^\s*(?P<marker>pytest_plugins)\s*(?::[^=]*)?\+?=",
        r"^\s*(?:async\s+)?def\s+(?P<marker>pytest_\w+)\s*\(",
        r"^\s*@(?P<marker>(?:pytest\.|_pytest\.\w+\.|pluggy\.)?hookimpl)\b",
        # the entry-point group plugins register under: setup.py, setup.cfg, pyproject.toml
        r"[\"'](?P<marker>pytest11)[\"']\s*:",
        r"^\s*(?P<marker>pytest11)\s*=",
        r"^\s*\[.*\b(?P<marker>pytest11)\b",
    ),
    runner_modules=frozenset(
        {"pytest", "_pytest", "py", "pluggy", "unittest", "nose", "nose2", "hypothesis"}
        | {"sitecustomize", "usercustomize"}  # run by every interpreter that finds them
    ),
    runner_access=_all(
        r"^\s*(?:import|from)\s+(?P<marker>_?pytest|pluggy)\b",
        r"\b(?:import_module|__import__)\(\s*[\"'](?P<marker>_?pytest|unittest|pluggy)\b",
        r"[\"'](?P<marker>_?pytest|unittest)[\"']\s+(?:not\s+)?in\s+sys\.modules",
        r"\bsys\.modules\s*(?:\.get\(|\[)\s*[\"'](?P<marker>_?pytest|unittest)\b",
        r"\b(?:environ|getenv)\b.*[\"'](?P<marker>PYTEST_\w*)",
        r"[\"'](?P<marker>PYTEST_\w*)[\"']\s+(?:not\s+)?in\s+os\.environ",
        r"^\s*(?P<marker>(?:_?pytest|unittest|pluggy)(?:\.\w+)+)\s*=(?!=)",
        r"\b(?:setattr|delattr)\(\s*(?P<marker>(?:_?pytest|unittest|pluggy)\b[\w.]*)",
    ),
)

JAVASCRIPT = RunnerFamily(
    name="javascript",
    extensions=(".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"),
    test_paths=("*.test.*", "*.spec.*", "**/__tests__/**", "**/test/**", "**/tests/**"),
    test_definition=re.compile(
        r"^\s*[xf]?(?:it|test)(?:\.(?:concurrent|only|skip|failing|each\(.*?\)))?\s*\("
        r"\s*(['\"`])(?P<name>.+?)\1"
    ),
    skip_markers=_all(
        r"\b(?:it|test|describe)\.skip\b",
        r"(?<![\w.])x(?:it|test|describe)\s*\(",
        r"\bthis\.skip\(\)",
    ),
    xfail_markers=_all(r"\b(?:it|test)\.failing\b"),
    deselect_markers=_all(
        r"\b(?:it|test|describe)\.only\b",
        r"(?<![\w.])f(?:it|describe)\s*\(",
    ),
    option_markers=_all(
        r"\b(?:testPathIgnorePatterns|modulePathIgnorePatterns|testNamePattern)\b",
        r"--(?:testNamePattern|testPathIgnorePatterns|passWithNoTests)\b",
    ),
    assertions=_all(r"\bexpect\s*\(", r"\bassert(?:\.\w+)?\s*\(", r"\.should\b"),
    expected_errors=_all(r"\.toThrow\w*\(", r"\.rejects\b", r"\bassert\.(?:throws|rejects)\("),
    trivial_statements=_all(
        r"^\s*expect\(\s*(?:true|1)\s*\)\.toBe\(\s*(?:true|1)\s*\);?\s*$",
        r"^\s*assert\(\s*true\s*\);?\s*$",
    ),
    config_files=(
        "jest.config.*",
        "vitest.config.*",
        "vitest.workspace.*",
        ".mocharc*",
        "karma.conf.*",
        "playwright.config.*",
    ),
    comment=re.compile(r"^\s*//"),
    sectioned_configs=(
        SectionedConfig(
            glob="package.json",
            header=None,
            sections=None,
            lines=re.compile(
                r"\"(?:scripts|test[\w:.-]*|pretest|posttest|jest|vitest|mocha|c8|nyc)\"\s*:"
                r"|\b(?:jest|vitest|mocha)\b"
            ),
        ),
    ),
)

GO = RunnerFamily(
    name="go",
    extensions=(".go",),
    test_paths=("*_test.go", "**/testdata/**"),
    test_definition=re.compile(r"^func\s+(?P<name>(?:Test|Benchmark|Example|Fuzz)\w*)\s*\("),
    skip_markers=_all(r"\b\w+\.Skip(?:f|Now)?\("),
    xfail_markers=(),
    deselect_markers=_all(r"^//\s*(?:go:build|\+build)\b"),
    option_markers=_all(r"\bgo test\b.*\s-(?:run|skip)(?:[\s=]|$)"),
    assertions=_all(
        r"\b\w+\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\(", r"\b(?:assert|require)\.\w+\("
    ),
    expected_errors=(),
    trivial_statements=(),
    config_files=(),
    comment=re.compile(r"^\s*//"),
    early_exits=_all(r"^\s*return\s*$"),
    nested_definitions=_all(r"\bfunc\s*\("),
)

RUST = RunnerFamily(
    name="rust",
    extensions=(".rs",),
    test_paths=("**/tests/**",),
    test_definition=re.compile(r"^\s*(?:pub\s+)?(?:async\s+)?fn\s+(?P<name>\w+)\s*\("),
    skip_markers=_all(r"#\[ignore\b"),
    xfail_markers=(),
    deselect_markers=(),
    option_markers=_all(r"--skip\b"),
    assertions=_all(r"\b(?:debug_)?assert(?:_eq|_ne)?!\s*\("),
    expected_errors=_all(r"#\[should_panic\b"),
    trivial_statements=_all(r"^\s*assert!\(\s*true\s*\);?\s*$"),
    config_files=(".config/nextest.toml",),
    comment=re.compile(r"^\s*//"),
    early_exits=_all(r"^\s*return\s*;?\s*$"),
    nested_definitions=_all(r"^\s*fn\s", r"\|[^|]*\|\s*\{"),
    swallowing=_all(r"\bcatch_unwind\("),
)

JAVA = RunnerFamily(
    name="java",
    extensions=(".java", ".kt"),
    test_paths=("**/src/test/**", "*Test.java", "*Tests.java", "*IT.java", "*Test.kt"),
    test_definition=re.compile(
        r"^\s*(?:(?:public|protected|private|static|final)\s+)*(?:void|fun)\s+(?P<name>\w+)\s*\("
    ),
    skip_markers=_all(r"@Disabled\b", r"@Ignore\b", r"\bAssum(?:e|ptions)\.assume\w*\("),
    xfail_markers=(),
    deselect_markers=(),
    option_markers=_all(r"-Dtest=", r"\bskipTests\b", r"\bmaven\.test\.skip\b"),
    assertions=_all(r"\bassert\w*\s*\(", r"\bverify\s*\("),
    expected_errors=_all(r"\bassertThrows\w*\s*\(", r"@Test\s*\(\s*expected\s*="),
    trivial_statements=_all(r"^\s*assertTrue\(\s*true\s*\);?\s*$"),
    config_files=(),
    comment=re.compile(r"^\s*//"),
    early_exits=_all(r"^\s*return\s*;?\s*$"),
    nested_definitions=_all(r"->\s*\{", r"\bnew\s+\w+\s*\(.*\)\s*\{"),
    swallowing=_all(r"\bcatch\s*\(\s*(?:final\s+)?(?:AssertionError|Throwable|Exception)\b"),
    sectioned_configs=(
        SectionedConfig(
            glob="pom.xml",
            header=None,
            sections=None,
            lines=re.compile(r"surefire|failsafe|skipTests|maven\.test|<(?:test)?[Ee]xcludes?>"),
        ),
        SectionedConfig(
            glob="build.gradle*",
            header=None,
            sections=None,
            lines=re.compile(r"\btest\s*\{|\bexclude\b|useJUnit|ignoreFailures|\bfilter\b"),
        ),
    ),
)

FAMILIES: tuple[RunnerFamily, ...] = (PYTHON, JAVASCRIPT, GO, RUST, JAVA)

# Files that configure how tests run whatever the language.
CI_FILES = (
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".travis.yml",
    "bitbucket-pipelines.yml",
    ".ci/**",
)
MAKEFILE = SectionedConfig(
    glob="[Mm]akefile",
    header=re.compile(r"^([A-Za-z0-9_.%/-]+)\s*::?(?!=)"),
    sections=re.compile(r"(?:^|[-_])(?:test|tests|check|ci|coverage|pytest)(?:$|[-_])"),
    lines=re.compile(r"\b(?:pytest|py\.test|tox|nox|go test|cargo test|jest|vitest|mocha)\b"),
)
# What in a Makefile a check runs is not in a recipe (which starts with a tab): a variable, a
# conditional, an include; these change the recipes of the targets the check runs too.
MAKEFILE_OUTSIDE_RECIPES = re.compile(r"^(?!\t)\S")
COMMON_SECTIONED = (MAKEFILE,)
# looptui's own configuration: it holds the loop's checks and gates for later runs.
LOOP_CONFIG_FILES = ("looptui.toml",)
# Directories whose files are tests or their data, in any language.
TEST_DATA_PATHS = ("**/tests/**", "**/test/**", "**/__tests__/**", "**/testdata/**")


def glob_match(pattern: str, path: str) -> bool:
    """Whether repository-relative `path` matches `pattern`.

    `*` and `?` stay within one directory, `**` spans any number of them, `[...]` is a class.
    A pattern without a slash matches a file name at any depth (as in .gitignore); one ending
    in a slash matches everything under that directory.
    """
    pattern = pattern.removeprefix("./").lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    if "/" not in pattern:
        pattern = "**/" + pattern
    return _glob_regex(pattern).fullmatch(path) is not None


def matches_any(patterns: tuple[str, ...], path: str) -> str | None:
    """The first of `patterns` that `path` matches, or None."""
    return next((pattern for pattern in patterns if glob_match(pattern, path)), None)


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[" and "]" in pattern[index + 2 :]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))
