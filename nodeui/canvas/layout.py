"""Where everything sits inside a node: title, socket rows, editor rows, the image area.

Computed from the node's spec and state only when they change; painting and hit-testing both
read the same ``NodeLayout`` so what is drawn is what is clicked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF

from core.graph import types as t
from core.graph.model import Node
from core.graph.spec import NodeSpec, WidgetInput
from nodeui.canvas import style as s

#: Editor kinds a widget row can have.
NUMBER, SLIDER, COMBO, TEXT, MULTILINE, TOGGLE = (
    "number",
    "slider",
    "combo",
    "text",
    "multiline",
    "toggle",
)


def editor_kind(widget: WidgetInput) -> str:
    """Which inline editor a widget gets."""
    if widget.type == t.BOOLEAN:
        return TOGGLE
    if widget.type == t.COMBO or widget.choices is not None or widget.choices_from:
        return COMBO
    if widget.type == t.FLOAT and widget.min is not None and widget.max is not None:
        return SLIDER
    if widget.type in (t.INT, t.FLOAT):
        return NUMBER
    return MULTILINE if widget.multiline else TEXT


@dataclass(frozen=True)
class SocketSlot:
    """One input or output socket: its name, link type and centre in node coordinates."""

    name: str
    type: str
    is_input: bool
    center: QPointF
    label_rect: QRectF


@dataclass(frozen=True)
class EditorRow:
    """One widget's inline editor. ``linked`` rows show an input socket instead."""

    widget: WidgetInput
    kind: str
    rect: QRectF
    socket: QPointF
    linked: bool
    #: The fixed / randomize / increment chip of a seed, when the widget has one.
    mode_rect: QRectF | None = None


@dataclass
class NodeLayout:
    width: float
    height: float
    title_rect: QRectF
    collapse_rect: QRectF
    inputs: list[SocketSlot] = field(default_factory=list)
    outputs: list[SocketSlot] = field(default_factory=list)
    editors: list[EditorRow] = field(default_factory=list)
    media_rect: QRectF | None = None
    #: The step-history scrub row under the picture: the step slider and the x_t/x̂₀ chip.
    scrub_rect: QRectF | None = None
    which_rect: QRectF | None = None
    collapsed: bool = False
    #: A second line under the title telling like nodes apart (an untitled prompt's text).
    subtitle: str = ""
    #: The height the node's rows need: the least a resize may leave it.
    content_height: float = 0.0

    @property
    def grip_rect(self) -> QRectF | None:
        """The resize grip in the bottom-right corner (none on a collapsed node)."""
        if self.collapsed:
            return None
        g = s.GRIP_SIZE
        return QRectF(self.width - g, self.height - g, g, g)

    def input_center(self, name: str) -> QPointF | None:
        for slot in self.inputs:
            if slot.name == name:
                return slot.center
        for row in self.editors:
            if row.widget.name == name:
                return row.socket
        return None

    def output_center(self, name: str) -> QPointF | None:
        for slot in self.outputs:
            if slot.name == name:
                return slot.center
        return None

    def editor(self, name: str) -> EditorRow | None:
        for row in self.editors:
            if row.widget.name == name:
                return row
        return None


def node_subtitle(spec: NodeSpec, node: Node, linked_widgets: frozenset[str]) -> str:
    """The first line of an untitled node's prompt (its first multi-line text field), so two
    "CLIP Text Encode" nodes can be told apart; empty when the node has a title of its own."""
    if node.title:
        return ""
    for widget in spec.widgets:
        if widget.multiline and widget.name not in linked_widgets:
            value = node.params.get(widget.name, widget.default)
            lines = [line.strip() for line in str(value).splitlines() if line.strip()]
            return lines[0] if lines else ""
    return ""


def auto_width(spec: NodeSpec, node: Node) -> float:
    """The node's width: its own when resized, else wide enough for its title (within
    ``MAX_AUTO_WIDTH``; longer titles are shortened in the middle)."""
    if node.size:
        return max(s.MIN_NODE_WIDTH, node.size[0])
    title = s.metrics(9.5, True).horizontalAdvance(node.title or spec.title)
    return min(s.MAX_AUTO_WIDTH, max(s.NODE_WIDTH, title + s.TITLE_ROOM))


def compute_layout(
    spec: NodeSpec,
    node: Node,
    linked_widgets: frozenset[str],
    media: bool,
    output_types: dict[str, str] | None = None,
    scrub: bool = False,
) -> NodeLayout:
    """The layout of ``node``; ``media`` reserves room for images or a live preview, and
    ``scrub`` a step-history row under it."""
    width = auto_width(spec, node)
    subtitle = "" if node.collapsed else node_subtitle(spec, node, linked_widgets)
    header = s.TITLE_HEIGHT + (s.SUBTITLE_HEIGHT if subtitle else 0.0)
    title_rect = QRectF(0.0, 0.0, width, header)
    collapse_rect = QRectF(6.0, (s.TITLE_HEIGHT - 12.0) / 2, 12.0, 12.0)
    output_types = output_types or {}
    if node.collapsed:
        mid = s.TITLE_HEIGHT / 2
        width = min(width, 180.0)
        title_rect = QRectF(0.0, 0.0, width, s.TITLE_HEIGHT)
        empty = QRectF()
        inputs = [
            SocketSlot(i.name, i.link_type, True, QPointF(0.0, mid), empty) for i in spec.inputs
        ]
        outputs = [
            SocketSlot(o.name, output_types.get(o.name, o.type), False, QPointF(width, mid), empty)
            for o in spec.outputs
        ]
        editors = [
            EditorRow(w, editor_kind(w), empty, QPointF(0.0, mid), w.name in linked_widgets)
            for w in spec.widgets
        ]
        return NodeLayout(
            width,
            s.TITLE_HEIGHT,
            title_rect,
            collapse_rect,
            inputs,
            outputs,
            editors,
            collapsed=True,
        )
    y = header + 4.0
    half = width / 2
    inputs, outputs = [], []
    sockets = spec.sockets
    for i in range(max(len(sockets), len(spec.outputs))):
        cy = y + s.ROW_HEIGHT / 2
        if i < len(sockets):
            inp = sockets[i]
            label = QRectF(s.PADDING + 4, y, half - s.PADDING, s.ROW_HEIGHT)
            inputs.append(SocketSlot(inp.name, inp.link_type, True, QPointF(0.0, cy), label))
        if i < len(spec.outputs):
            out = spec.outputs[i]
            label = QRectF(half, y, half - s.PADDING - 4, s.ROW_HEIGHT)
            kind = output_types.get(out.name, out.type)
            outputs.append(SocketSlot(out.name, kind, False, QPointF(width, cy), label))
        y += s.ROW_HEIGHT
    editors = []
    for widget in spec.widgets:
        kind = editor_kind(widget)
        linked = widget.name in linked_widgets
        height = s.MULTILINE_HEIGHT if kind == MULTILINE and not linked else s.ROW_HEIGHT
        rect = QRectF(s.PADDING + 4, y + 1, width - 2 * s.PADDING - 8, height - 2)
        mode_rect = None
        if widget.control_after_run and not linked:
            y += height + s.ROW_GAP
            mode_rect = QRectF(s.PADDING + 4, y + 1, width - 2 * s.PADDING - 8, s.ROW_HEIGHT - 2)
            height = s.ROW_HEIGHT
        socket = QPointF(0.0, rect.center().y())
        editors.append(EditorRow(widget, kind, rect, socket, linked, mode_rect))
        y += height + s.ROW_GAP
    media_rect = scrub_rect = which_rect = None
    content_height = y + 6.0
    if media or scrub:
        content_height += s.IMAGE_AREA + 4
    if scrub:
        content_height += s.ROW_HEIGHT + 4
    height = max(content_height, node.size[1] if node.size else 0.0)
    if media or scrub:
        # A node made taller than its rows gives the extra room to its picture.
        area = s.IMAGE_AREA + height - content_height
        media_rect = QRectF(s.PADDING, y + 2, width - 2 * s.PADDING, area)
        y += area + 4
    if scrub:
        left, right = s.PADDING + 4, width - s.PADDING - 4
        chip = s.WHICH_CHIP_WIDTH
        scrub_rect = QRectF(left, y + 3, right - left - chip - 4, s.ROW_HEIGHT - 2)
        which_rect = QRectF(right - chip, y + 3, chip, s.ROW_HEIGHT - 2)
    return NodeLayout(
        width,
        height,
        title_rect,
        collapse_rect,
        inputs,
        outputs,
        editors,
        media_rect,
        scrub_rect,
        which_rect,
        subtitle=subtitle,
        content_height=content_height,
    )
