"""environment.yml (conda) and pyproject.toml (pip) must name the same packages and versions."""

import re
from pathlib import Path

import pytest
import yaml

from conftest import REFERENCE_INSTALLS

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # pip name → conda-forge name
CONDA_ONLY = {"python", "pip", "nodejs"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_split(r) for r in extra if not r.startswith("tsrobust"))
    wanted = {CONDA_NAMES.get(k, k): v for k, v in wanted.items()}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip, "environment.yml must install the project itself with pip"
    conda.update(_split(d) for d in pip if d != "-e .")  # packages that only PyPI has
    assert "conda-forge" in env["channels"]

    extra = set(conda) - set(wanted) - CONDA_ONLY
    missing = set(wanted) - set(conda)
    assert not missing, f"in pyproject.toml but not environment.yml: {sorted(missing)}"
    assert not extra, f"in environment.yml but not pyproject.toml: {sorted(extra)}"
    differ = {k: (wanted[k], conda[k]) for k in wanted if wanted[k] != conda[k]}
    assert not differ, f"version specs differ (pyproject, environment.yml): {differ}"


@pytest.mark.parametrize("command", REFERENCE_INSTALLS)
def test_the_reference_library_is_installed_the_same_way_everywhere(command):
    """torchattacks and rbo are installed apart, with --no-deps (tests/conftest.py says why): the
    README, environment.yml and CI give the one command, and neither dependency list names it."""
    name = command.split()[-1].split("==")[0]
    for file in ("README.md", "environment.yml", ".ci/run"):
        text = (ROOT / file).read_text().replace("pip install -q ", "pip install ")
        assert command in text, f"{file} does not say {command!r}"
    assert name not in str(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    assert not any(name in str(d)
                   for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"])
