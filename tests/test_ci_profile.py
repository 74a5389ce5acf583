"""Hypothesis is repeatable under CI (``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import settings


def test_the_ci_profile_draws_the_same_examples_every_run() -> None:
    profile = settings.get_profile("ci")
    assert profile.derandomize
    assert profile.database is None
    assert settings.default.derandomize == bool(os.environ.get("CI"))


def test_ci_set_in_the_environment_loads_the_ci_profile(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe_profile.py"
    probe.write_text(
        "from hypothesis import settings\n"
        "def test_profile():\n"
        "    assert settings.default.derandomize\n"
    )
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
