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


def test_the_service_and_its_client_import_no_ui_either() -> None:
    """The service runs where no terminal is; its client is shared by the CLI and the TUI."""
    code = (
        "import sys, looptui.protocol.events, looptui.protocol.commands;"
        "import looptui.service.server, looptui.service.daemon;"
        "import looptui.client.remote, looptui.client.connect;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_protocol_alone_loads_no_engine() -> None:
    """The typed messages share the engine's records, not its machinery."""
    code = (
        "import sys, looptui.protocol.events, looptui.protocol.commands;"
        "print(sorted(m for m in sys.modules if m.startswith('looptui.engine.')"
        " and m not in ('looptui.engine.models',)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
