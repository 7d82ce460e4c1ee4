"""How to run this looptui again from a shell, as the messages that name a command say it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def looptui_command() -> str:
    """A shell command that runs this looptui as written, whatever PATH holds (another
    shell's may not find it): the `looptui` script next to the running interpreter (a
    venv's, on PATH only once activated), else the interpreter with `-m looptui`."""
    script = Path(sys.executable).parent / "looptui"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m looptui"
