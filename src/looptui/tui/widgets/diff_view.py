"""A run's diff, syntax-highlighted, unified or split, with a review cursor and decisions.

The widget only shows: the Patch comes from the engine, the decisions from a `Selection`
the review screen owns. Each reviewable unit (a hunk, or a file taken whole) is one child, so
the cursor can move, scroll and restyle a unit without repainting the rest.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.token import Comment, Keyword, Name, Number, Operator, String, Token
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
from rich.syntax import ANSISyntaxTheme, Syntax
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.reactive import reactive
from textual.widgets import Static

from looptui.engine.workspace import (
    Decision,
    FilePatch,
    Hunk,
    HunkKey,
    Line,
    LineKind,
    Patch,
    Selection,
)

DECISION_MARK = {Decision.ACCEPTED: "✔ accepted", Decision.REJECTED: "✘ rejected"}
# Pygments token families and the component class (so the theme's variable) that colours each
SYNTAX_LOOKS = {
    Keyword: "keyword",
    Name.Function: "name",
    Name.Class: "name",
    Name.Decorator: "name",
    Name.Builtin: "name",
    String: "string",
    Number: "number-literal",
    Comment: "comment",
    Operator: "operator",
    Operator.Word: "keyword",
}


class DiffUnit(Static):
    """One hunk, or one file's whole change, of the diff."""

    DEFAULT_CSS = """
    DiffUnit {
        padding: 0 1 0 0;
        border-left: outer $panel;
        &.-cursor { border-left: outer $primary; background: $boost; }
        &.-accepted { border-left: outer $verdict-pass; }
        &.-rejected { border-left: outer $verdict-fail; opacity: 60%; }
        &.-cursor.-accepted { border-left: thick $verdict-pass; }
        &.-cursor.-rejected { border-left: thick $verdict-fail; }
    }
    """

    def __init__(
        self, key: HunkKey, file: FilePatch, hunk: Hunk | None, first_of_file: bool
    ) -> None:
        super().__init__(classes="diff-unit")
        self.key = key
        self.file = file
        self.hunk = hunk  # None: the unit is the file whole, or its rename or mode change
        self.first_of_file = first_of_file


class DiffView(VerticalScroll, can_focus=True):
    """The diff of a run; `show` replaces it, `cursor` and `mark` drive the review."""

    DEFAULT_CSS = """
    DiffView {
        padding: 0 1;
        .diff-view--add { background: $diff-add; }
        .diff-view--remove { background: $diff-remove; }
        .diff-view--add-sign { color: $diff-add-text; text-style: bold; }
        .diff-view--remove-sign { color: $diff-remove-text; text-style: bold; }
        .diff-view--number { color: $text-muted; }
        .diff-view--hunk { color: $secondary; }
        .diff-view--file { color: $text; text-style: bold; background: $panel; }
        .diff-view--pass { color: $verdict-pass; text-style: bold; }
        .diff-view--fail { color: $verdict-fail; text-style: bold; }
        .diff-view--muted { color: $text-muted; }
        .diff-view--keyword { color: $syntax-keyword; }
        .diff-view--name { color: $syntax-name; }
        .diff-view--string { color: $syntax-string; }
        .diff-view--number-literal { color: $syntax-number; }
        .diff-view--comment { color: $syntax-comment; text-style: italic; }
        .diff-view--operator { color: $syntax-operator; }
    }
    DiffView > .diff-empty { color: $text-muted; padding: 1 2; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diff-view--add",
        "diff-view--remove",
        "diff-view--add-sign",
        "diff-view--remove-sign",
        "diff-view--number",
        "diff-view--hunk",
        "diff-view--file",
        "diff-view--pass",
        "diff-view--fail",
        "diff-view--muted",
        *(f"diff-view--{look}" for look in SYNTAX_LOOKS.values()),
    }

    split: reactive[bool] = reactive(False, init=False)

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.patch = Patch()
        self.selection: Selection | None = None
        self.units: dict[HunkKey, DiffUnit] = {}
        self.cursor: HunkKey | None = None
        self.line_cursor: int | None = None  # line mode: the line of the cursor's hunk
        self._syntax_theme: ANSISyntaxTheme | None = None

    def on_mount(self) -> None:
        # The drawn lines hold the theme's colours: draw them again once the new styles apply.
        self.app.theme_changed_signal.subscribe(
            self, lambda _: self.call_after_refresh(self.repaint)
        )

    async def show(self, patch: Patch, selection: Selection | None = None) -> None:
        """Replace the diff shown (and the decisions to show with it)."""
        self.patch, self.selection = patch, selection
        await self.remove_children()
        self.units = {}
        if not patch.files:
            await self.mount(Static("No changes.", classes="diff-empty"))
            return
        widgets = []
        for file in patch.files:
            for index, (key, hunk) in enumerate(_units_of(file)):
                if key not in self.units:  # a type change's two halves share one unit
                    self.units[key] = DiffUnit(key, file, hunk, first_of_file=index == 0)
                    widgets.append(self.units[key])
        await self.mount_all(widgets)
        self.repaint()

    def repaint(self) -> None:
        self._syntax_theme = None  # the theme may have changed
        for unit in self.units.values():
            self._paint(unit)

    def watch_split(self) -> None:
        self.repaint()

    def move_cursor(self, key: HunkKey | None) -> None:
        previous = self.units.get(self.cursor) if self.cursor else None
        if previous is not None:
            previous.remove_class("-cursor")
            if self.line_cursor is not None:
                self.line_cursor = None
                self._paint(previous)
        self.cursor = key
        unit = self.units.get(key) if key else None
        if unit is not None:
            unit.add_class("-cursor")
            self.scroll_to_widget(unit, animate=False, top=unit.region.height > self.size.height)

    def place_at_hand(self) -> tuple[str, int] | None:
        """The file and line to open in an editor: the cursor's unit, else the one at the
        top of the view; the line its first added line (else where it starts), in the new
        file, or in line mode the line under its cursor. None when nothing is shown, or the
        file was deleted."""
        unit = self.units.get(self.cursor) if self.cursor else None
        if unit is None:
            top = self.scroll_y
            for candidate in self.units.values():
                if unit is not None and candidate.virtual_region.y > top:
                    break
                unit = candidate
        if unit is None or unit.file.new_path is None:
            return None
        hunks = [unit.hunk] if unit.hunk is not None else list(unit.file.hunks)
        if unit.hunk is not None and self.line_cursor is not None and unit.key == self.cursor:
            # line mode: the line under its cursor (a removed line: the new line after it)
            after = [line.new_number for line in unit.hunk.lines[self.line_cursor :]]
            found = next((number for number in after if number is not None), None)
            return unit.file.new_path, found or unit.hunk.new_start or 1
        lines = [line for hunk in hunks for line in hunk.lines if line.new_number is not None]
        added = [line for line in lines if line.kind is LineKind.ADDED]
        first = (added or lines)[0].new_number if lines else None
        return unit.file.new_path, first or (hunks[0].new_start if hunks else 1) or 1

    def move_line_cursor(self, index: int | None) -> None:
        """Line mode on the cursor's hunk, its cursor on line `index`; None leaves it."""
        self.line_cursor = index
        unit = self.units.get(self.cursor) if self.cursor else None
        if unit is None:
            return
        self._paint(unit)
        if index is not None:  # the title line(s), the @@ line, then the hunk's lines
            top = unit.virtual_region.y + int(unit.first_of_file) + 1 + index
            self.scroll_to_region(Region(0, top, 1, 1), animate=False)

    def mark(self, keys: set[HunkKey] | None = None) -> None:
        """Repaint the units whose decisions changed (all of them by default)."""
        for key, unit in self.units.items():
            if keys is None or key in keys:
                self._paint(unit)

    # -- painting --------------------------------------------------------------------------

    def _paint(self, unit: DiffUnit) -> None:
        decision = self.selection.decision(unit.key) if self.selection else Decision.UNDECIDED
        unit.set_class(decision is Decision.ACCEPTED, "-accepted")
        unit.set_class(decision is Decision.REJECTED, "-rejected")
        unit.update(self._render_unit(unit, decision))

    def _render_unit(self, unit: DiffUnit, decision: Decision) -> RenderableType:
        style = self.get_component_rich_style
        file, hunk = unit.file, unit.hunk
        mark = Text()
        rejected = self.selection.rejected_lines(unit.key) if self.selection else frozenset()
        if decision in DECISION_MARK:
            look = "diff-view--pass" if decision is Decision.ACCEPTED else "diff-view--fail"
            mark = Text(f"  {DECISION_MARK[decision]}", style(look))
            if decision is Decision.ACCEPTED and rejected:
                count = len(rejected)
                mark.append(f", {count} line{'s' if count != 1 else ''} left out", style(look))
        parts: list[RenderableType] = []
        if unit.first_of_file:
            title = Text(f" {_describe(file)} ", style("diff-view--file"))
            parts.append(title + mark if hunk is None else title)
        if hunk is not None:
            lines = rejected if decision is Decision.ACCEPTED else frozenset()
            cursor = self.line_cursor if unit.key == self.cursor else None
            parts.append(self._render_hunk(file, hunk, mark, lines, cursor))
            return Group(*parts)
        muted = style("diff-view--muted")
        if file.binary:
            parts.append(Text("  binary file: taken or left whole", muted))
        if file.new_mode and file.old_mode and file.old_mode != file.new_mode:
            parts.append(Text(f"  mode {file.old_mode} → {file.new_mode}", muted))
        if not file.split:
            parts += [self._render_hunk(file, whole, Text()) for whole in file.hunks]
            if not file.hunks and not file.binary:
                parts.append(Text(f"  {file.status.value}, no content change", muted))
        return Group(*parts)

    def _render_hunk(
        self,
        file: FilePatch,
        hunk: Hunk,
        mark: Text,
        rejected: frozenset[int] = frozenset(),
        cursor: int | None = None,
    ) -> RenderableType:
        """A hunk; `rejected` lines (of an accepted hunk) struck out, and in line mode the
        `cursor` line pointed at (always unified: the split view has no line cursor)."""
        style = self.get_component_rich_style
        header = Text(hunk.header, style("diff-view--hunk")) + mark
        highlighted = self._highlight(file.path, hunk.lines)
        body = (
            self._split_body(hunk, highlighted)
            if self.split and cursor is None and not rejected
            else self._unified_body(file, hunk, highlighted, rejected, cursor)
        )
        return Group(header, body)

    def _highlight(self, path: str, lines: tuple[Line, ...]) -> list[Text]:
        code = "\n".join(line.text for line in lines)
        if self._syntax_theme is None:
            style = self.get_component_rich_style
            looks = {token: style(f"diff-view--{look}") for token, look in SYNTAX_LOOKS.items()}
            self._syntax_theme = ANSISyntaxTheme({Token: Style(), **looks})
        try:
            lexer = Syntax.guess_lexer(path, code)
            syntax = Syntax(code, lexer, theme=self._syntax_theme)
            text = syntax.highlight(code)
        except Exception:  # an odd file name or content: show it plain rather than fail
            text = Text(code)
        text.rstrip()
        rendered = list(text.split("\n", allow_blank=True))
        rendered += [Text("")] * (len(lines) - len(rendered))
        return list(rendered[: len(lines)])

    def _unified_body(
        self,
        file: FilePatch,
        hunk: Hunk,
        highlighted: list[Text],
        rejected: frozenset[int] = frozenset(),
        cursor: int | None = None,
    ) -> RenderableType:
        style = self.get_component_rich_style
        last = max((h.old_start + h.old_count, h.new_start + h.new_count) for h in file.hunks)
        width = len(str(max(last)))
        gutter = bool(rejected) or cursor is not None  # a column for the line marks
        rows = []
        for index, (line, code) in enumerate(zip(hunk.lines, highlighted, strict=True)):
            old = "" if line.old_number is None else str(line.old_number)
            new = "" if line.new_number is None else str(line.new_number)
            numbers = Text(f"{old:>{width}} {new:>{width}} ", style("diff-view--number"))
            if gutter:
                pointer = "▶" if index == cursor else " "
                cross = "✘" if index in rejected else " "
                numbers = Text.assemble(
                    (pointer, style("diff-view--hunk")), (cross, style("diff-view--fail")), numbers
                )
            sign, look = _signs(line.kind)
            row = Text.assemble(numbers, (sign, style(f"diff-view--{look}-sign") if look else ""))
            row.append_text(code)
            if index in rejected:  # left out of what lands: struck, untinted
                row.stylize(Style(strike=True, dim=True), len(numbers))
                look = ""
            if line.missing_newline:
                row.append(" ⏎̸", style("diff-view--muted"))
            rows.append(
                _Tinted(row, _background(style(f"diff-view--{look}")), len(numbers))
                if look
                else row
            )
        return Group(*rows)

    def _split_body(self, hunk: Hunk, highlighted: list[Text]) -> RenderableType:
        style = self.get_component_rich_style
        table = Table.grid(expand=True, padding=(0, 1))
        table.add_column(width=5, justify="right", style=style("diff-view--number"))
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        table.add_column(width=5, justify="right", style=style("diff-view--number"))
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        removed: list[tuple[Line, Text]] = []
        added: list[tuple[Line, Text]] = []

        def flush() -> None:
            for index in range(max(len(removed), len(added))):
                left = removed[index] if index < len(removed) else None
                right = added[index] if index < len(added) else None
                table.add_row(
                    str(left[0].old_number) if left else "",
                    _styled(left[1], _background(style("diff-view--remove"))) if left else "",
                    str(right[0].new_number) if right else "",
                    _styled(right[1], _background(style("diff-view--add"))) if right else "",
                )
            removed.clear()
            added.clear()

        for line, code in zip(hunk.lines, highlighted, strict=True):
            if line.kind is LineKind.REMOVED:
                removed.append((line, code))
            elif line.kind is LineKind.ADDED:
                added.append((line, code))
            else:
                flush()
                table.add_row(str(line.old_number), code, str(line.new_number), code)
        flush()
        return table


class _Tinted:
    """A diff line whose background (from `start` on) runs to the edge, whatever the width
    turns out to be when it is drawn."""

    def __init__(self, row: Text, background: Style, start: int) -> None:
        self.row, self.background, self.start = row, background, start

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        row = self.row.copy()
        row.stylize(self.background, self.start)
        for line in row.wrap(console, width):  # each screen line of a long one, to the edge
            end = len(line)
            line.pad_right(max(0, width - line.cell_len))
            line.stylize(self.background, end)
            yield line


def _units_of(file: FilePatch) -> list[tuple[HunkKey, Hunk | None]]:
    """The file's reviewable units: the file whole, or its header change and its hunks."""
    if file.file_key is not None and not file.split:
        return [(file.file_key, None)]
    header = [(file.file_key, None)] if file.file_key is not None else []
    return header + [(hunk.key, hunk) for hunk in file.hunks]


def _signs(kind: LineKind) -> tuple[str, str]:
    if kind is LineKind.ADDED:
        return "+", "add"
    if kind is LineKind.REMOVED:
        return "-", "remove"
    return " ", ""


def _background(style: Style) -> Style:
    """Only the background of a component's style: a tint must keep the syntax colours."""
    return Style(bgcolor=style.bgcolor)


def _styled(text: Text, background: Style) -> Text:
    copy = text.copy()
    copy.stylize(background)
    return copy


def _describe(file: FilePatch) -> str:
    change = f"+{file.added} −{file.removed}"
    if file.old_path and file.new_path and file.old_path != file.new_path:
        return f"{file.old_path} → {file.new_path}  ({file.status.value}, {change})"
    return f"{file.path}  ({file.status.value}, {change})"
