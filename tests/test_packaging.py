"""An installed looptui has every file it reads at run time, not only its Python modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = (  # what a wheel build does to the package's files, without needing `wheel`
    "import sys, setuptools; "
    "sys.argv = ['setup.py', '-q', 'build_py', '--build-lib', 'out']; "
    "setuptools.setup()"
)


def test_the_built_package_holds_every_data_file_of_the_source(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "src", tmp_path / "src", symlinks=True)
    shutil.copytree(ROOT / "themes", tmp_path / "themes")  # src/looptui/themes links to it
    shutil.copytree(ROOT / "skills", tmp_path / "skills")  # and src/looptui/_skills to this
    build = subprocess.run(
        [sys.executable, "-c", BUILD], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, build.stderr
    package = (tmp_path / "src" / "looptui").resolve()
    wanted = {
        path.relative_to(package).as_posix()
        for path in package.glob("**/*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and "__pycache__" not in path.parts
        and ".egg-info" not in str(path)
    }
    wanted |= {f"themes/{path.name}" for path in (package / "themes").glob("*.toml")}
    skills = (package / "_skills").resolve()
    wanted |= {
        f"_skills/{path.relative_to(skills).as_posix()}"
        for path in skills.glob("**/*")
        if path.is_file()
    }
    built = {
        path.relative_to(tmp_path / "out" / "looptui").as_posix()
        for path in (tmp_path / "out" / "looptui").glob("**/*")
        if path.is_file()
    }
    assert {
        "py.typed",
        "tui/app.tcss",
        "themes/looptui-dusk.toml",
        "_skills/test-fixer/SKILL.md",
    } <= wanted
    assert wanted - built == set()
