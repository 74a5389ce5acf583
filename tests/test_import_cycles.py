"""No import cycles in the editor: every module of ``nodeui`` can be read, and changed, knowing
only the modules below it. Imports made only for type hints count too, as do imports deferred
into functions, since either can hide a cycle. Code below a module that needs it back gets a
protocol or a callback instead (``nodeui.canvas.protocols``)."""

from __future__ import annotations

import grimp
import networkx as nx


def import_cycles(package: str) -> list[list[str]]:
    """Each set of modules of ``package`` that import each other round in a circle, as
    "a -> b (line n)" lines, largest first."""
    graph = grimp.build_graph(package, cache_dir=None)
    arrows = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == package or imported.startswith(package + "."):
                arrows.add_edge(module, imported)
    cycles = []
    for members in nx.strongly_connected_components(arrows):
        if len(members) < 2:
            continue
        lines = []
        for source, target in sorted(arrows.subgraph(members).edges()):
            details = graph.get_import_details(importer=source, imported=target)
            where = ", ".join(str(d["line_number"]) for d in details)
            lines.append(f"{source} -> {target} (line {where})")
        cycles.append(lines)
    return sorted(cycles, key=len, reverse=True)


def test_the_editor_has_no_import_cycles():
    cycles = import_cycles("nodeui")
    report = "\n\n".join("\n".join(lines) for lines in cycles)
    assert not cycles, (
        f"nodeui has {len(cycles)} import cycle(s); make one arrow of each point the other way "
        f"(a protocol or a callback instead of the import back):\n\n{report}"
    )


def test_a_cycle_through_a_type_hint_or_a_function_is_found(tmp_path, monkeypatch):
    package = tmp_path / "loop_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "top.py").write_text("from loop_pkg import middle\n")
    (package / "middle.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from loop_pkg.top import Thing\n"
        "def later():\n"
        "    from loop_pkg import bottom\n"
    )
    (package / "bottom.py").write_text("")
    (package / "alone.py").write_text("def f():\n    from loop_pkg import alone_too\n")
    (package / "alone_too.py").write_text("from loop_pkg import bottom\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cycles = import_cycles("loop_pkg")
    assert cycles == [
        ["loop_pkg.middle -> loop_pkg.top (line 3)", "loop_pkg.top -> loop_pkg.middle (line 1)"]
    ]
