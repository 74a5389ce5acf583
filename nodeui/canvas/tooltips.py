"""What hovering on a node says: a socket its type and description, a field its description,
default and range, the title the node's description. Read from the specs, never from running
a node; the scene shows them on Qt's help events."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPointF

from core.graph.spec import NodeSpec, SocketInput, WidgetInput
from nodes.reference import widget_value
from nodeui.canvas.items.node import NodeItem


def _name(name: str) -> str:
    return escape(name.replace("_", " "))


def _lines(head: str, *rest: str) -> str:
    body = "".join(f"<br>{line}" for line in rest if line)
    return f"<p style='white-space:pre-wrap'>{head}{body}</p>"


def _input_tip(spec: NodeSpec, name: str, linked: bool = False) -> str:
    inp = spec.input(name)
    if inp is None:
        return ""
    head = f"<b>{_name(inp.name)}</b> · {escape(inp.type)}"
    if isinstance(inp, SocketInput):
        head += " (optional link)" if inp.optional else " (link)"
        return _lines(head, escape(inp.description))
    assert isinstance(inp, WidgetInput)
    value = f"<i>{escape(widget_value(inp)).replace('`', '')}</i>"
    state = "<i>set by its link</i>" if linked else ""
    return _lines(head, escape(inp.description), value, state)


def _output_tip(spec: NodeSpec, name: str) -> str:
    out = spec.output(name)
    if out is None:
        return ""
    return _lines(
        f"<b>{_name(out.name)}</b> · {escape(out.type)} (output)", escape(out.description)
    )


def _title_tip(item: NodeItem) -> str:
    spec = item.spec
    node = item.graph.node(item.node_id)
    head = f"<b>{escape(node.title or spec.title)}</b>"
    kind = (
        f"{escape(spec.title)} · {escape(spec.category)}" if node.title else escape(spec.category)
    )
    return _lines(head, kind, escape(spec.description))


def tooltip(item: NodeItem, local: QPointF) -> str:
    """The tooltip for the point ``local`` (node coordinates) of ``item``; empty if none."""
    spec = item.spec
    hit = item.hit(local)
    if hit.kind == "output":
        return _output_tip(spec, hit.name)
    if hit.kind == "input":
        return _input_tip(spec, hit.name, linked=isinstance(spec.input(hit.name), WidgetInput))
    if hit.kind in ("editor", "mode"):
        return _input_tip(spec, hit.name)
    if hit.kind == "title":
        return _title_tip(item)
    for slot in item.layout.outputs:  # the socket's label counts as the socket
        if slot.label_rect.contains(local):
            return _output_tip(spec, slot.name)
    for slot in item.layout.inputs:
        if slot.label_rect.contains(local):
            return _input_tip(spec, slot.name)
    return ""
