"""Every malformed or hostile input gives a clean result or a clear one-line error.

Each case of the corpus goes through ``main.py validate`` and ``main.py run`` in this process,
with the sandbox as the working folder: no traceback, the exit code the case expects, every
error line naming the file, node or field at fault, nothing written outside the output folder
and no code run by a model file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import main
from tests.safety.corpus import CASES, Case, Sandbox, write_all

pytestmark = pytest.mark.slow

#: The line main.py prints before the list of a workflow's problems.
PROBLEMS_HEADER = "The workflow is not valid"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sandbox, dict[str, Path]]:
    root = tmp_path_factory.mktemp("corpus")
    return Sandbox(root), write_all(root)


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` outside ``skip``, with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == skip:
            dirs[:] = []
            continue
        for name in files:
            stat = (Path(folder) / name).lstat()
            found[str(Path(folder, name).relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _error_lines(text: str) -> list[str]:
    """The lines that report an error: ``error: …``, a failed node, or a listed problem."""
    lines, in_problems = [], False
    for line in text.splitlines():
        if line.startswith(PROBLEMS_HEADER):
            in_problems = True
        else:
            listed = in_problems and line.startswith("  - ")
            if listed or line.startswith("error:") or " failed: " in line:
                lines.append(line)
    return lines


def _check_output(case: Case, command: str, code: int, expected: int, err: str) -> None:
    assert "Traceback" not in err, f"{case.name}: {command} printed a traceback:\n{err}"
    assert code == expected, f"{case.name}: {command} exited {code}, expected {expected}:\n{err}"
    if expected == main.EXIT_OK:
        return
    lines = _error_lines(err)
    assert lines, f"{case.name}: {command} failed without an error line:\n{err}"
    for line in lines:
        assert len(line) < 600, f"{case.name}: an error line of {len(line)} characters"
        assert any(word.lower() in line.lower() for word in case.mentions), (
            f"{case.name}: {command}: {line!r} names none of {case.mentions}"
        )
        assert "weights_only" not in line, f"{case.name}: advises turning weights_only off"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_malformed_input_gives_a_clear_answer(case, corpus, capsys, monkeypatch):
    box, paths = corpus
    path = paths[case.name]
    monkeypatch.chdir(box.root)
    before = _tree(box.root, box.out)
    out_before = set(_tree(box.out, box.root / "none"))
    models = ["--models", str(box.models)]

    code = main.main(["validate", str(path), *models])
    _check_output(case, "validate", code, case.validate_exit, capsys.readouterr().err)
    code = main.main(["run", str(path), "--out", str(box.out), *models])
    _check_output(case, "run", code, case.run_exit, capsys.readouterr().err)

    assert _tree(box.root, box.out) == before, f"{case.name}: wrote outside the output folder"
    assert not box.markers.exists() or not any(box.markers.iterdir()), (
        f"{case.name}: a model file ran code: {sorted(os.listdir(box.markers))}"
    )
    if case.outputs is not None:
        written = set(_tree(box.out, box.root / "none")) - out_before
        assert written == set(case.outputs), f"{case.name}: wrote {sorted(written)}"


def test_the_corpus_is_large_enough():
    workflows = [case for case in CASES if case.kind == "workflow"]
    checkpoints = [case for case in CASES if case.kind == "checkpoint"]
    assert len(workflows) >= 40
    assert len(checkpoints) >= 15
    assert len({case.name for case in CASES}) == len(CASES)
