"""The engine stands alone: no UI toolkit comes in with it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_engine_does_not_import_textual() -> None:
    code = (
        "import sys, looptui.engine, looptui.engine.supervisor, looptui.engine.runner;"
        "import looptui.engine.agents.command, looptui.engine.agents.replay;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
