"""Workspace isolation: a git worktree and branch per run."""

from looptui.engine.workspace.paths import PathEscape, confine
from looptui.engine.workspace.repository import MergePreview, Repository

__all__ = ["MergePreview", "PathEscape", "Repository", "confine"]
