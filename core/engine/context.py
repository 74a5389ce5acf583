"""What a node function receives besides its inputs: the cancel token, progress and preview
reporting, where to write files, and a way to record UI outputs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.engine.errors import Cancelled
from core.engine.events import Event, Preview, Progress, Record
from core.graph.model import NodeId


class CancelToken:
    """A thread-safe cancel flag: the GUI thread cancels, the run checks between nodes and the
    node functions check it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raises ``Cancelled`` once ``cancel()`` has been called (from any thread)."""
        if self._event.is_set():
            raise Cancelled("the run was cancelled")


class NodeContext:
    """The handle a node function gets as its first argument.

    ``progress`` also checks the cancel token, so a loop that reports progress each step is
    cancellable without further code.
    """

    __slots__ = (
        "_emit",
        "cancel",
        "device",
        "node_id",
        "output_dir",
        "preview_vae_every",
        "records",
        "title",
        "workflow",
    )

    def __init__(
        self,
        node_id: NodeId,
        title: str,
        cancel: CancelToken,
        emit: Callable[[Event], None],
        output_dir: Path,
        workflow: dict[str, Any] | None = None,
        device: str = "auto",
        preview_vae_every: int = 0,
    ) -> None:
        self.node_id = node_id
        self.title = title
        self.cancel = cancel
        self.output_dir = output_dir
        self.workflow = workflow
        self.device = device
        #: Samplers decode x̂₀ with the full VAE every this many steps for their live preview
        #: (0: only the fast latent→RGB projection). A display choice: not part of cache keys.
        self.preview_vae_every = preview_vae_every
        self.records: list[Record] = []
        self._emit = emit

    def progress(self, step: int, total: int) -> None:
        """Reports that ``step`` of ``total`` is done; raises ``Cancelled`` if cancelled."""
        self._emit(Progress(self.node_id, step, total))
        self.cancel.raise_if_cancelled()

    def preview(self, image: Any) -> None:
        """Shows ``image`` (opaque to the engine) on the node while it works."""
        self._emit(Preview(self.node_id, image))

    def record(self, kind: str, value: Any) -> None:
        """Records a UI output (``"file"``, ``"image"``…): it goes into the report and is cached
        with the node's result, so a cached output node still reports it."""
        self.records.append(Record(kind, value))
