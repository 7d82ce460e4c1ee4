"""The configuration-file rules: which changed lines of a file that collects or runs the tests
matter, and the markers (skip, expected failure, deselection) that a changed line may add.

A CI file, a file the check commands run, the looptui configuration or a runner's own config
file configures tests in every line; a sectioned file (pyproject.toml, a Makefile, package.json)
only in its test sections.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from looptui.engine.models import Flag
from looptui.engine.verification.check_commands import CheckFiles
from looptui.engine.verification.diff_lines import first_changed, normal, quote, search
from looptui.engine.verification.families import (
    CI_FILES,
    COMMON_SECTIONED,
    FAMILIES,
    LOOP_CONFIG_FILES,
    MAKEFILE,
    MAKEFILE_OUTSIDE_RECIPES,
    Patterns,
    RunnerFamily,
    SectionedConfig,
    matches_any,
)
from looptui.engine.verification.rule_names import (
    TEST_CONFIG,
    TEST_DESELECTED,
    TEST_PATCHED,
    TEST_SKIPPED,
    TEST_XFAIL,
)
from looptui.engine.workspace.patch import FilePatch, FileStatus, Line, LineKind

Markers = tuple[tuple[str, str, Patterns], ...]  # (rule, message, patterns)


def family_markers(families: Iterable[RunnerFamily], *, options: bool = True) -> Markers:
    """The markers of `families`; with `options`, those of configuration files too."""
    families = tuple(families)
    deselect = [f.deselect_markers for f in families]
    deselect += [f.option_markers for f in families] if options else []
    plugins = [f.plugin_options for f in families] if options else []
    return (
        (
            TEST_XFAIL,
            "a test is marked as expected to fail",
            _merge(f.xfail_markers for f in families),
        ),
        (TEST_SKIPPED, "a test is skipped", _merge(f.skip_markers for f in families)),
        (TEST_DESELECTED, "tests are deselected", _merge(deselect)),
        (
            TEST_CONFIG,  # a plugin can rewrite any result: deselect, skip, pass a failure
            "a test runner plugin or hook is added",
            _merge([f.plugin_markers for f in families] + plugins),
        ),
    )


def _merge(groups: Iterable[Patterns]) -> Patterns:
    return tuple(pattern for group in groups for pattern in group)


ALL_MARKERS = family_markers(FAMILIES)


def whole_file_config(path: str, checks: CheckFiles) -> tuple[str, Markers] | None:
    """What a file that configures tests in all its lines is, and the markers to look for."""
    if matches_any(CI_FILES, path) is not None:
        return "a CI file", ALL_MARKERS
    if path in checks.whole:
        return "a file the check commands run", ALL_MARKERS
    if matches_any(LOOP_CONFIG_FILES, path) is not None:
        return "the looptui configuration", ALL_MARKERS
    for family in FAMILIES:
        if matches_any(family.config_files, path) is not None:
            patched = (TEST_PATCHED, "the code under test is patched", family.patches)
            return f"the {family.name} test configuration", (*family_markers((family,)), patched)
    return None


def sectioned_rules(path: str, checks: CheckFiles) -> Iterator[tuple[SectionedConfig, Markers]]:
    """The sectioned rules for `path`, with the markers that make a line of it relevant (a
    family's own; none for files shared by all, where another tool's `-k` may mean anything)."""
    candidates = [(rule, family_markers((f,))) for f in FAMILIES for rule in f.sectioned_configs]
    candidates += [(rule, ()) for rule in COMMON_SECTIONED]
    for rule, markers in candidates:
        if matches_any((rule.glob,), path) is not None:
            names = checks.parts.get(path)
            if names:
                rule = _with_check_parts(rule, names)
            if rule.glob == MAKEFILE.glob and path in checks.makefiles:
                rule = dataclasses.replace(rule, anywhere=MAKEFILE_OUTSIDE_RECIPES)
            yield rule, markers


def _with_check_parts(rule: SectionedConfig, names: frozenset[str]) -> SectionedConfig:
    """`rule` with the Makefile targets or package.json scripts a check command runs."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    if rule.header is not None and rule.sections is not None:
        sections = re.compile(f"(?:{rule.sections.pattern})|^(?:{alternatives})$")
        return dataclasses.replace(rule, sections=sections)
    lines = re.compile(f'(?:{rule.lines.pattern})|"(?:{alternatives})"\\s*:')
    return dataclasses.replace(rule, lines=lines)


def relevant_lines(file: FilePatch, rule: SectionedConfig, markers: Markers) -> list[Line]:
    """The changed lines of a sectioned config file that configure tests."""
    relevant: list[Line] = []
    for hunk in file.hunks:
        section = _header(rule, hunk.section)
        for line in hunk.lines:
            header = _header(rule, line.text)
            section = header or section
            if line.kind is LineKind.CONTEXT:
                continue
            if header is None and rule.anywhere is not None and rule.anywhere.search(line.text):
                hit = True
            elif section is not None and rule.sections is not None:
                hit = rule.sections.search(section) is not None
            else:
                hit = rule.lines.search(line.text) is not None
            if hit or any(search(patterns, line.text) for _, _, patterns in markers):
                relevant.append(line)
    return relevant


def _header(rule: SectionedConfig, text: str) -> str | None:
    if rule.header is None:
        return None
    match = rule.header.match(text)
    return match[1] if match else None


def config_flags(file: FilePatch, lines: list[Line], what: str, markers: Markers) -> list[Flag]:
    """Flags for the relevant changed `lines` of a config file: one per marker added, else one
    for the file, saying `what` it is."""
    flags = list(marker_flags(file, lines, markers))
    if flags:
        return flags
    if file.status is FileStatus.DELETED:
        return [Flag(TEST_CONFIG, file.path, None, f"{what} was deleted: {file.path}")]
    first = next(iter(lines), None)
    message = f"{what} changed" + (f": {quote(first.text)}" if first and first.text.strip() else "")
    return [Flag(TEST_CONFIG, file.path, first_changed(lines), message)]


def marker_flags(file: FilePatch, lines: list[Line], markers: Markers) -> Iterator[Flag]:
    """A flag for each added line among `lines` that holds a marker and was not there before."""
    before = Counter(normal(line.text) for line in lines if line.kind is LineKind.REMOVED)
    for line in lines:
        if line.kind is not LineKind.ADDED:
            continue
        key = normal(line.text)
        if before[key] > 0:
            before[key] -= 1
            continue
        for rule, message, patterns in markers:
            match = search(patterns, line.text)
            if match is not None:
                shown = match["marker"] if "marker" in match.re.groupindex else match[0]
                shown = shown.strip().rstrip("(")
                yield Flag(rule, file.path, line.new_number, f"{message}: {shown}")
                break
