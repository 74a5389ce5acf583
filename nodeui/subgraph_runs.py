"""Run states, previews, histories and pictures on the canvas whichever level it shows.

At the top level the window draws a run's events as they come. Inside a subgraph the canvas
shows the definition entered through one instance; the engine names the nodes inside by their
path (instance id, …, inner node id), so the events of the nodes under the entered instance's
path are drawn on the definition's nodes: a node directly inside gets its own state, a nested
instance the sum of its nodes' states. Each time the canvas changes level (a fresh scene) what
the document's latest run left there is drawn again.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from nodeui.images import PreviewFrame
from nodeui.inner_runs import Path, summed_state
from nodeui.runstate import NodeRunState


class SubgraphRunView(QObject):
    """Follows the window's ``RunController`` and ``SubgraphNavigator``."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        runs = window.runs
        runs.innerNodeState.connect(self._on_state)
        runs.innerNodePreview.connect(self._on_preview)
        runs.innerNodeHistory.connect(self._on_history)
        runs.innerNodeImages.connect(self._on_images)
        runs.statesCleared.connect(self._on_cleared)
        window.subgraphs.levelShown.connect(self.redraw)

    # --- where a path is on the canvas -----------------------------------------------------

    def _shown_prefix(self, origin: object) -> Path | None:
        """The entered instance's path when the canvas shows ``origin`` inside a subgraph."""
        window = self.window
        if origin is not window.document or not window.subgraphs.path:
            return None
        prefix = window.subgraphs.instance_path
        return prefix if prefix else None

    def _node_of(self, origin: object, path: Path) -> tuple[int, bool, Path] | None:
        """The canvas node standing for ``path``, whether it is that very node (False: a
        nested instance holding it) and the shown node's own path; None when the canvas
        does not show it."""
        prefix = self._shown_prefix(origin)
        if prefix is None or len(path) <= len(prefix) or path[: len(prefix)] != prefix:
            return None
        node_id = path[len(prefix)]
        if node_id not in self.window.scene.nodes:
            return None
        return node_id, len(path) == len(prefix) + 1, path[: len(prefix) + 1]

    # --- live -------------------------------------------------------------------------------

    def _on_state(self, origin: object, path: Path, state: NodeRunState) -> None:
        found = self._node_of(origin, path)
        if found is None:
            return
        node_id, own, shown = found
        if not own:
            run = self.window.runs.latest_run(origin)
            summed = summed_state(s for _, s in run.inner.under(shown)) if run else None
            state = summed or state
        self.window.scene.set_node_state(node_id, state)

    def _on_preview(self, origin: object, path: Path, frame: PreviewFrame) -> None:
        found = self._node_of(origin, path)
        if found is not None:
            caption = f"step {frame.step}/{frame.total}" if frame.step is not None else ""
            self.window.scene.set_node_preview(found[0], frame.image, caption)

    def _on_history(self, origin: object, path: Path, history: object) -> None:
        found = self._node_of(origin, path)
        if found is not None and found[1]:
            self.window.scene.set_node_preview(found[0], None)
            cursor = self.window.scene.set_node_history(found[0], history)
            if cursor is not None:
                cursor.set_final(self.window.runs.inner_final_pictures(origin).get(path))

    def _on_images(self, origin: object, path: Path, images: list[QImage]) -> None:
        found = self._node_of(origin, path)
        if found is not None and found[1]:
            self.window.scene.set_node_images(found[0], images)

    def _on_cleared(self, origin: object) -> None:
        """A new run of the shown document starts: the last run's marks inside go."""
        if self._shown_prefix(origin) is not None:
            scene = self.window.scene
            scene.clear_run_states()
            for node_id in list(scene.nodes):
                scene.set_node_preview(node_id, None)

    # --- a fresh scene ----------------------------------------------------------------------

    def redraw(self) -> None:
        """Draws what the document's latest run left on the level the canvas now shows."""
        window = self.window
        origin = window.document
        run = window.runs.latest_run(origin)
        if not window.subgraphs.path:
            self._redraw_top(run)
            return
        prefix = self._shown_prefix(origin)
        if prefix is None:
            return
        if run is not None:
            nested: set[Path] = set()
            for path, state in run.inner.under(prefix):
                if len(path) == len(prefix) + 1:
                    self._on_state(origin, path, state)
                else:
                    nested.add(path[: len(prefix) + 1])
            for instance in nested:
                summed = summed_state(s for _, s in run.inner.under(instance))
                if summed is not None and instance[-1] in window.scene.nodes:
                    window.scene.set_node_state(instance[-1], summed)
            for path, images in run.inner_images.items():
                self._on_images(origin, path, images)
        for path, history in window.runs.inner_histories(origin).items():
            self._on_history(origin, path, history)

    def _redraw_top(self, run: Any) -> None:
        """Back at the workflow: its nodes' states, pictures and histories."""
        window = self.window
        scene, origin = window.scene, window.document
        if run is not None:
            for node_id, state in run.states.items():
                if node_id in scene.nodes:
                    scene.set_node_state(node_id, state)
            for node_id, images in run.node_images.items():
                if node_id in scene.nodes:
                    scene.set_node_images(node_id, images)
        finals = window.runs.final_pictures(origin)
        for node_id, history in window.runs.histories(origin).items():
            if node_id in scene.nodes:
                cursor = scene.set_node_history(node_id, history)
                if cursor is not None:
                    cursor.set_final(finals.get(node_id))
