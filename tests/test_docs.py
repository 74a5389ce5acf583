"""The generated pages in docs/ describe the nodes as they are.

When one fails, regenerate it with the command its first lines name and commit the result.
"""

from __future__ import annotations

from pathlib import Path

from nodes import build_registry
from nodes.reference import markdown_reference

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_node_reference_is_current():
    expected = markdown_reference(build_registry(entry_points=()))
    current = (DOCS / "nodes.md").read_text(encoding="utf-8")
    assert current == expected, "docs/nodes.md is out of date: python main.py nodes --markdown"


def test_the_comfyui_coverage_page_is_current():
    from tools.comfyui_coverage import coverage, markdown

    current = (DOCS / "comfyui.md").read_text(encoding="utf-8")
    assert current == markdown(coverage()), (
        "docs/comfyui.md is out of date: python tools/comfyui_coverage.py > docs/comfyui.md"
    )
