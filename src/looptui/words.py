"""Counts in words that read as English: "1 file", "2 files", never "1 files" or "file(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the noun plural unless the count is one ("1 run", "0 runs");
    `plural` for nouns that take more than an s ("1 match", "2 matches")."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
