"""The merge dialog: the conflict preview first, then merge (or squash) or go back."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from looptui.engine.workspace import MergePreview, SelectionCounts
from looptui.tui.screens.dialog import Dialog


class MergeScreen(Dialog[bool]):
    """Shows what the merge would do; dismisses True to merge, False to go back."""

    DEFAULT_CSS = """
    MergeScreen.-conflict > .dialog-box { border: thick $verdict-fail; }
    MergeScreen .ok { color: $verdict-pass; text-style: bold; }
    MergeScreen .conflict { color: $verdict-fail; text-style: bold; }
    MergeScreen .muted { color: $text-muted; }
    MergeScreen VerticalScroll { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "merge", "Merge"),
        Binding("n,escape", "back", "Back"),
    ]

    def __init__(
        self, run_id: str, preview: MergePreview, counts: SelectionCounts, squash: bool
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.preview = preview
        self.counts = counts
        self.squash = squash

    def compose(self) -> ComposeResult:
        preview, counts = self.preview, self.counts
        how = "squash" if self.squash else "merge commit"
        self.set_class(not preview.clean, "-conflict")
        with Vertical(classes="dialog-box") as box:
            box.border_title = f"Merge run {self.run_id} into {preview.base_branch} ({how})"
            if preview.clean:
                yield Static("✔ merges cleanly (previewed; nothing has changed yet)", classes="ok")
            else:
                yield Static("✘ would conflict: nothing will be merged", classes="conflict")
            yield Static(
                f"{counts.accepted} accepted, {counts.rejected} rejected (left out), "
                f"{counts.undecided} undecided (land as accepted)",
                classes="muted",
            )
            files = preview.conflicts if not preview.clean else preview.changed_files
            label = "conflicting files" if not preview.clean else "files"
            with VerticalScroll():
                yield Static(Text("\n".join(f"  {name}" for name in files) or "  (none)"))
            noun = label if len(files) != 1 else label.removesuffix("s")
            yield Static(f"{len(files)} {noun}", classes="muted")
            action = "y/enter merge · n/esc back" if preview.clean else "n/esc back"
            yield Static(action, classes="muted")

    def action_merge(self) -> None:
        if self.preview.clean:
            self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
