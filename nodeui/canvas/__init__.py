"""The node canvas: a ``GraphScene`` mirroring a ``Graph`` and a ``GraphView`` to edit it.

See ``nodeui/README.md`` for the contract with the window. Modules: ``scene`` (mirroring
and gesture dispatch), ``view`` (pan, zoom, keys, palette, minimap), ``items`` (node, link,
group, reroute, run-state overlay, previews), ``gestures`` (one class per gesture),
``edits`` (undoable edit operations), ``palette``, ``minimap``, ``clipboard``,
``inline_edit`` (temporary typing editors), ``layout`` and ``style``.
"""

from nodeui.canvas.scene import GraphScene
from nodeui.canvas.view import NODE_MIME, GraphView

__all__ = ["NODE_MIME", "GraphScene", "GraphView"]
