"""The merge dialog: the conflict preview and the run's last verdict first, then merge (or
squash) or go back; a run with nothing to merge is told so here, and only that. A run whose
verdict is not done merges only after a second `y` that names why it should not."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from looptui.engine.landing import MergePlan, debt_line, landing_line, undecided_reason
from looptui.engine.models import ReviewTally
from looptui.engine.workspace import SelectionCounts
from looptui.tui.screens.dialog import Dialog

MAX_FLAGS = 5  # flags listed in the dialog; the review and the run's log have them all


class MergeScreen(Dialog[bool]):
    """Shows what the merge would do; dismisses True to merge, False to go back."""

    DEFAULT_CSS = """
    MergeScreen.-conflict > .dialog-box { border: thick $verdict-fail; }
    MergeScreen.-unproven > .dialog-box { border: thick $warning; }
    MergeScreen .ok { color: $verdict-pass; text-style: bold; }
    MergeScreen .conflict { color: $verdict-fail; text-style: bold; }
    MergeScreen .unproven { color: $warning; text-style: bold; }
    MergeScreen .muted { color: $text-muted; }
    MergeScreen #merge-confirm { color: $warning; text-style: bold; display: none; }
    MergeScreen VerticalScroll { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "merge", "Merge"),
        Binding("n,escape", "back", "Back"),
    ]

    def __init__(
        self,
        run_id: str,
        plan: MergePlan,
        counts: SelectionCounts,
        squash: bool,
        review: ReviewTally | None = None,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.plan = plan
        self.preview = plan.preview
        self.counts = counts
        self.squash = squash
        self.review = review if review is not None else plan.review
        self.armed = False  # a run not proven done: the first `y` asked, the second merges
        # `[review] require_decisions` with hunks undecided: say so now, not after `y`
        self.refusal: str | None = None
        if plan.decisions_required and self.review is not None:
            self.refusal = undecided_reason(run_id, self.review)

    def compose(self) -> ComposeResult:
        preview, counts, gate = self.preview, self.counts, self.plan.gate
        how = "squash" if self.squash else "merge commit"
        self.set_class(not preview.clean or self.refusal is not None, "-conflict")
        self.set_class(preview.clean and not gate.allowed, "-unproven")
        if self.plan.nothing is not None:  # said once, here: no "merges cleanly" to take back
            with Vertical(classes="dialog-box") as box:
                box.border_title = f"Merge run {self.run_id} into {preview.base_branch}"
                yield Static(Text(f"= {self.plan.nothing}"), id="merge-nothing", classes="ok")
                yield Static("n/esc back", id="merge-keys", classes="muted")
            return
        with Vertical(classes="dialog-box") as box:
            box.border_title = f"Merge run {self.run_id} into {preview.base_branch} ({how})"
            if preview.clean:
                yield Static("✔ merges cleanly (previewed; nothing has changed yet)", classes="ok")
            else:
                yield Static("✘ would conflict: nothing will be merged", classes="conflict")
            if gate.allowed:
                yield Static("✔ its last verdict is done", classes="ok")
            else:
                yield Static(Text(f"✘ not proven done: {gate.reason}"), classes="unproven")
                for flag in gate.other_flags[:MAX_FLAGS]:
                    yield Static(Text(f"  ⚑ {flag}"), classes="unproven")
                if len(gate.other_flags) > MAX_FLAGS:
                    more = len(gate.other_flags) - MAX_FLAGS
                    yield Static(f"  and {more} more flags", classes="muted")
            yield Static(landing_line(counts), classes="muted")
            unread = self.review is not None and self.review.unread_hunks > 0
            # the understanding debt: what lands unread (all clear is no news beside a refusal)
            if self.review is not None and (unread or self.refusal is None):
                yield Static(
                    ("⚠ " if unread else "✔ ") + debt_line(self.review),
                    id="merge-debt",
                    classes="unproven" if unread else "ok",
                )
            if self.refusal is not None:
                refusal = Text(f"✘ cannot merge yet: {self.refusal}")
                yield Static(refusal, id="merge-refusal", classes="conflict")
            files = preview.conflicts if not preview.clean else preview.changed_files
            label = "conflicting files" if not preview.clean else "files"
            with VerticalScroll():
                yield Static(Text("\n".join(f"  {name}" for name in files) or "  (none)"))
            noun = label if len(files) != 1 else label.removesuffix("s")
            yield Static(f"{len(files)} {noun}", classes="muted")
            if not preview.clean or self.refusal is not None:
                action = "n/esc back"
            elif gate.allowed:
                action = "y/enter merge · n/esc back"
            else:
                action = "y/enter merge anyway (asks again) · n/esc back"
            yield Static(action, id="merge-keys", classes="muted")
            yield Static(id="merge-confirm")

    @property
    def can_merge(self) -> bool:
        return self.plan.nothing is None and self.preview.clean and self.refusal is None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`y` is not offered where it would do nothing."""
        return self.can_merge if action == "merge" else True

    def action_merge(self) -> None:
        if not self.can_merge:
            return
        if self.plan.gate.allowed or self.armed:
            self.dismiss(True)
            return
        self.armed = True
        confirm = self.query_one("#merge-confirm", Static)
        confirm.update(
            Text(f"Merge anyway, though {self.plan.gate.reason}? y: merge anyway · n: back")
        )
        confirm.display = True

    def action_back(self) -> None:
        self.dismiss(False)
