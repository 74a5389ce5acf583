"""Node packs installed for a test without pip: a package and its ``*.dist-info`` (metadata and
``entry_points.txt``) written into a temporary folder put on ``sys.path``, which is all
``importlib.metadata`` reads to find an entry point.

``pack_site`` gives that folder and, afterwards, takes it off ``sys.path`` and forgets the
modules imported from it, so one test's packs never leak into another.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

#: The example pack with its own ``pyproject.toml`` (docs/node-packs.md describes it).
EXAMPLE_PACK = Path(__file__).resolve().parents[1] / "fixtures" / "node_pack"
EXAMPLE_NAME = "latentloom-example-pack"


def install_on_path(
    site: Path,
    name: str,
    version: str,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str] = (),  # type: ignore[assignment]
) -> None:
    """Writes ``modules`` (file name → source) and the dist-info of distribution ``name``
    declaring ``entry_points`` (name → ``module:attr``) in the ``latentloom.nodes`` group."""
    for filename, source in dict(modules).items():
        (site / filename).parent.mkdir(parents=True, exist_ok=True)
        (site / filename).write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[latentloom.nodes]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def install_example_pack(site: Path) -> None:
    """The fixture pack as pip would lay it out, its entry points read from its pyproject."""
    project = tomllib.loads((EXAMPLE_PACK / "pyproject.toml").read_text())["project"]
    shutil.copytree(
        EXAMPLE_PACK / "latentloom_example_pack",
        site / "latentloom_example_pack",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    install_on_path(
        site,
        project["name"],
        project["version"],
        project["entry-points"]["latentloom.nodes"],
    )


@pytest.fixture
def pack_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` to install packs into, cleaned up after the test."""
    site = tmp_path / "site-packages"
    site.mkdir()
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in set(sys.modules) - before:
        where = getattr(sys.modules[module], "__file__", None) or ""
        if where.startswith(str(site)):
            del sys.modules[module]
