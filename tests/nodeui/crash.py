"""An editor process that dies without a clean exit, as a crash does: its recovery file and
the lock on it stay behind, and the lock's process is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, os, sys
from pathlib import Path
import nodes
from core.graph.commands import SetParam
from core.graph.model import Graph
from nodeui.documents import Document, RecoveryStore
from nodeui.undo import push

folder, source, edits = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
registry = nodes.build_registry()
if source:
    document = Document.open(Path(source), registry)
else:
    graph = Graph(registry)
    graph.add_node("CLIPTextEncode", node_id=1)
    document = Document(graph)
for node_id, name, value in edits:
    push(document.undo_stack, document.graph, SetParam(node_id, name, value))
store = RecoveryStore(folder)
store.write(document)
print(store.path, flush=True)
os._exit(1)
"""


def crash_leaving_recovery(
    folder: Path, source: Path | None = None, edits: Iterable[tuple[int, str, object]] = ()
) -> Path:
    """Runs a process that autosaves ``source`` (else an untitled graph with a prompt node,
    id 1) after ``edits`` into ``folder`` and dies; returns the recovery file it left."""
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(folder), str(source or ""), json.dumps(list(edits))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        check=False,
    )
    assert result.returncode == 1, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_file() and Path(f"{path}.lock").is_file()
    return path
