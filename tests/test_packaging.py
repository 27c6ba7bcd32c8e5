"""The installed package holds every module: pyproject's package list matches the package folders of the tree, and
a non-editable install (what `pip install .` gives a user) imports every command and the Python API.

``make`` installs in editable mode, which reads the source folders directly and would hide a missing package.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {package: ROOT / folder for package, folder in setuptools["package-dir"].items()}
    found = set()
    for package, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found.add(".".join([package, *parts]))
    assert found == set(setuptools["packages"])


@pytest.mark.slow
def test_a_built_wheel_holds_every_module(tmp_path: Path) -> None:
    import shutil
    import zipfile

    # Built from a copy of the sources: setuptools writes build/ and *.egg-info beside what it builds.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("crab_eval", "tasks", "model", "baselines"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run(pip, check=True, capture_output=True, cwd=source)
    (wheel,) = tmp_path.glob("crab_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"crab_eval/clients/__init__.py", "crab_eval/models/__init__.py", "crab_eval/tasks/ave.py",
                "crab_eval/model/train.py", "crab_eval/baselines/published.json", "crab_eval/cli.py"}  # fmt: skip
    assert expected <= names
