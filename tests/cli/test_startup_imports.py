"""Start-up stays light: commands that only read or check a workflow never import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKFLOW = ROOT / "resources" / "workflows" / "default.json"

_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
import main
code = main.main({argv!r})
print(json.dumps({{"code": code, "heavy": sorted(
    m for m in ("torch", "diffusers", "transformers", "PySide6") if m in sys.modules)}}))
"""


def _modules_after(argv: list[str]) -> dict:
    script = _PROBE.format(root=str(ROOT), argv=argv)
    environment = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_validating_the_default_workflow_imports_no_torch():
    result = _modules_after(["validate", str(DEFAULT_WORKFLOW)])

    assert result == {"code": 0, "heavy": []}
