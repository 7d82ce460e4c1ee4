"""The review screen's keys: its bindings, in the order of its footer, and which of them need
a hunk under the cursor."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from looptui.tui.worktree import EDIT_BINDING, WORKTREE_BINDINGS

# the actions that need a hunk under the cursor
ON_A_HUNK = {"decide", "decide_file", "line_mode", "move", "move_file", "comment", "edit"}

# In the order of the footer, which a narrow terminal cuts from the right: the keys that
# decide and merge first (80 columns keep them up to `m`); `?` lists them all.
REVIEW_BINDINGS: list[BindingType] = [
    Binding("escape", "back", "Back"),
    # line mode's own key, next in line: shown only there, where 80 columns keep it
    Binding("space", "toggle_line", "Toggle", tooltip="Take or leave this line"),
    Binding("a", "decide('accepted')", "Accept", tooltip="Accept this hunk"),
    Binding("x", "decide('rejected')", "Reject", tooltip="Reject this hunk"),
    # the same keys in line mode, where they decide the line under the cursor
    Binding("a", "decide_line('accepted')", "Take line", tooltip="Take this line"),
    Binding("x", "decide_line('rejected')", "Leave line", tooltip="Leave this line out"),
    Binding("enter", "line_mode", "Lines", tooltip="Decide this hunk line by line"),
    Binding("enter", "leave_lines", "Hunks", tooltip="Back to deciding hunks", show=False),
    Binding("m", "merge(False)", "Merge", tooltip="Merge what is not rejected (merge commit)"),
    # priority: the diff would scroll on up/down by itself; the cursor scrolls it instead
    Binding("j,down", "move(1)", "Next", tooltip="Next hunk (line, in line mode)", priority=True),
    Binding(
        "k,up",
        "move(-1)",
        "Previous hunk",
        tooltip="Previous hunk (line, in line mode)",
        show=False,
        priority=True,
    ),
    Binding("M", "merge(True)", "Squash", tooltip="Merge what is not rejected as one commit"),
    Binding("c", "comment('hunk')", "Comment", tooltip="Feedback on this hunk for the agent"),
    Binding("d", "discard", "Discard", tooltip="Discard the run: its worktree and branch"),
    Binding("J,right_square_bracket", "move_file(1)", "Next file"),
    Binding("K,left_square_bracket", "move_file(-1)", "Previous file", show=False),
    Binding(
        "A",
        "decide_file('accepted')",
        "Accept file",
        tooltip="Accept the whole file",
        show=False,
    ),
    Binding(
        "X",
        "decide_file('rejected')",
        "Reject file",
        tooltip="Reject the whole file",
        show=False,
    ),
    Binding(
        "backspace", "decide('undecided')", "Undo", tooltip="Take back the decision", show=False
    ),
    Binding("C", "comment('file')", "Comment file", tooltip="Feedback on this file", show=False),
    Binding("t", "scope", "Scope", tooltip="Review the whole run or its last iteration"),
    Binding("u", "split", "Split/unified", tooltip="Side by side or unified"),
    EDIT_BINDING,
    *WORKTREE_BINDINGS,
]
