"""Reading the user's files (looptui.toml, prompt files) without trusting what they are."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotARegularFile(OSError):
    """A path that is a directory, a FIFO, a device or a socket: never read as text."""


def read_regular_file(path: Path) -> str:
    """The UTF-8 text of `path`, which must be a regular file (a symlink to one is fine).

    Opened without blocking and checked on the open descriptor: a FIFO would hang a plain
    read forever, `/dev/zero` would fill memory, and a stat before the open could be raced.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(_file_kind(mode))
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read().decode("utf-8")


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"
