"""The node reference: every node of a registry as Markdown, written from the specs alone.

``main.py nodes --markdown > docs/nodes.md`` writes it; a test keeps the shipped file in step
with the catalogue, so the reference never describes nodes that no longer are what it says.
Model-file lists are left out (they depend on the machine); ranges, steps, choices and
defaults are the specs' own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from core.graph.spec import NodeSpec, SocketInput, WidgetInput

#: Choice lists longer than this are summarised instead of listed in full.
_MAX_CHOICES = 12


def markdown_reference(specs: Iterable[NodeSpec]) -> str:
    """The Markdown reference of ``specs``, grouped by category, each sorted by title."""
    by_category: dict[str, list[NodeSpec]] = defaultdict(list)
    for spec in specs:
        if not spec.placeholder:
            by_category[spec.category].append(spec)
    lines = [
        "# Node reference",
        "",
        "Every node LatentLoom has, by category: what it does, its inputs (sockets to link, "
        "widgets to set, with their ranges) and its outputs. Generated from the node specs by "
        "`python main.py nodes --markdown`; do not edit by hand.",
        "",
    ]
    for category in sorted(by_category):
        nodes = sorted(by_category[category], key=lambda s: (s.title.lower(), s.type_id))
        lines.append(f"- **{category}**: " + ", ".join(_link(s) for s in nodes))
    for category in sorted(by_category):
        lines += ["", f"## {category}"]
        for spec in sorted(by_category[category], key=lambda s: (s.title.lower(), s.type_id)):
            lines += ["", *_node(spec)]
    return "\n".join(lines) + "\n"


def _anchor(spec: NodeSpec) -> str:
    return spec.type_id.lower()


def _link(spec: NodeSpec) -> str:
    return f"[{spec.title}](#{_anchor(spec)})"


def _node(spec: NodeSpec) -> list[str]:
    lines = [f'### {spec.title} <a id="{_anchor(spec)}"></a>', ""]
    facts = [f"Type `{spec.type_id}`"]
    if spec.output_node:
        facts.append("output node")
    lines.append(" · ".join(facts))
    if spec.description:
        lines += ["", spec.description]
    if spec.inputs:
        lines += ["", "| input | type | value | description |", "|---|---|---|---|"]
        lines += [_input_row(inp) for inp in spec.inputs]
    if spec.outputs:
        outputs = ", ".join(f"`{o.name}` ({o.type})" for o in spec.outputs)
        lines += ["", f"Outputs: {outputs}."]
    return lines


def _input_row(inp: SocketInput | WidgetInput) -> str:
    if isinstance(inp, SocketInput):
        value = "optional link" if inp.optional else "link"
        return f"| `{inp.name}` | {inp.type} | {value} | {_cell(inp.description)} |"
    return f"| `{inp.name}` | {inp.type} | {_cell(widget_value(inp))} | {_cell(inp.description)} |"


def widget_value(widget: WidgetInput) -> str:
    """A widget's default, range, step or multiple and choices, in words."""
    parts = [f"default {_shown(widget.default)}"]
    if widget.min is not None or widget.max is not None:
        low = "…" if widget.min is None else f"{widget.min:g}"
        high = "…" if widget.max is None else f"{widget.max:g}"
        parts.append(f"{low} to {high}")
    if widget.multiple_of:
        parts.append(f"multiple of {widget.multiple_of}")
    elif widget.step is not None and widget.type != "STRING":
        parts.append(f"step {widget.step:g}")
    if widget.choices:
        if len(widget.choices) <= _MAX_CHOICES:
            parts.append("one of " + ", ".join(f"`{c}`" for c in widget.choices))
        else:
            parts.append(f"one of {len(widget.choices)} choices")
    if widget.choices_from:
        parts.append(f"a file from the {widget.choices_from} folders")
    return "; ".join(parts)


def _shown(value: object) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "…"
        return f"`{text}`" if text else "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
