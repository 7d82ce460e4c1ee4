"""The linters and the type checker configured in pyproject.toml stay clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' brings it)")
    return found


@pytest.mark.parametrize(
    "argv",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(argv: list[str]) -> None:
    result = subprocess.run(
        [_tool(argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ui_reads_the_store_only_through_engine_history() -> None:
    ui = Path(__file__).resolve().parent.parent / "src" / "looptui" / "tui"
    offenders = [
        f"{path.relative_to(ui)}:{number}"
        for path in sorted(ui.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if not line.lstrip().startswith("from ")  # importing the Subscription type is fine
        and ("engine.store" in line or ".repository." in line)
    ]
    assert offenders == [], "the UI must use Engine.history and the facade's methods"
