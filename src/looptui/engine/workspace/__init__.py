"""Workspace isolation: a git worktree and branch per run."""

from looptui.engine.workspace.git_diff import PatchParseError, build_patch, parse_patch
from looptui.engine.workspace.merging import MergePreview
from looptui.engine.workspace.patch import (
    FilePatch,
    FileStatus,
    Hunk,
    HunkKey,
    Line,
    LineKind,
    Patch,
)
from looptui.engine.workspace.paths import PathEscape, confine
from looptui.engine.workspace.repository import Repository
from looptui.engine.workspace.selection import (
    ContentId,
    Decision,
    KeptDecision,
    Selection,
    SelectionCounts,
    shown_in,
)

__all__ = [
    "ContentId",
    "Decision",
    "FilePatch",
    "FileStatus",
    "Hunk",
    "HunkKey",
    "KeptDecision",
    "Line",
    "LineKind",
    "MergePreview",
    "Patch",
    "PatchParseError",
    "PathEscape",
    "Repository",
    "Selection",
    "SelectionCounts",
    "build_patch",
    "confine",
    "parse_patch",
    "shown_in",
]
