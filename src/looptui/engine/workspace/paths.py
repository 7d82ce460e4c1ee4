"""Keep agent file access inside its worktree."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class PathEscape(ValueError):
    """A path that is absolute, climbs out with `..`, or leads outside through a symlink."""


def confine(root: Path, relative: str, what: str = "the worktree") -> Path:
    """Resolve `relative` inside `root` (`what`, in messages), refusing any path that would
    leave it.

    Absolute paths and `..` parts are refused outright, even when they would land back inside;
    symlinks are followed and the destination must still be inside `root`.
    """
    if not relative or "\0" in relative:
        raise PathEscape(f"invalid path {relative!r}")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or relative.startswith("~"):
        raise PathEscape(f"absolute path {relative!r} is outside {what}")
    if ".." in pure.parts:
        raise PathEscape(f"path {relative!r} climbs out of {what}")
    if pure.parts and pure.parts[0] == ".git":
        raise PathEscape(f"path {relative!r} is inside git's own files")
    real_root = root.resolve()
    candidate = (real_root / pure).resolve()
    if candidate != real_root and real_root not in candidate.parents:
        raise PathEscape(f"path {relative!r} leads outside {what} through a symlink")
    inside = candidate.relative_to(real_root).parts
    if inside and inside[0] == ".git":
        raise PathEscape(f"path {relative!r} leads into git's own files through a symlink")
    return candidate
