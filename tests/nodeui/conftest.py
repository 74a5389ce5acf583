"""Qt tests run offscreen; the variable must be set before Qt is imported.

Every test gets its own per-user data folder (recovery files, the subgraph library), so no
test reads or writes the files of the person running the suite.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("LATENTLOOM_DATA_DIR", str(tmp_path_factory.mktemp("user-data")))
