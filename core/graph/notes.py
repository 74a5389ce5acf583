"""Notes in workflow files: an optional top-level ``"notes"`` list, so files without notes
stay as they were and readers that predate notes skip them::

    "notes": [{"id": 1, "text": "…", "markdown": false, "pos": [x, y], "size": [w, h]}]
"""

from __future__ import annotations

import math
from typing import Any

from core.graph.model import Graph, Note


class NoteFormatError(ValueError):
    """A notes entry that cannot be read; the message says which and why."""


def notes_to_list(graph: Graph) -> list[dict[str, Any]]:
    """The graph's notes as JSON-ready entries, by id."""
    return [
        {
            "id": note.id,
            "text": note.text,
            "markdown": note.markdown,
            "pos": list(note.pos),
            "size": list(note.size),
        }
        for _, note in sorted(graph.notes.items())
    ]


def add_notes(graph: Graph, entries: Any) -> None:
    """Adds the notes a file lists; raises ``NoteFormatError`` for an entry it cannot read."""
    if not isinstance(entries, list):
        raise NoteFormatError("'notes' should be a list")
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise NoteFormatError(f"note entry {index} should be an object")
        note_id = raw.get("id")
        if isinstance(note_id, bool) or not isinstance(note_id, int):
            raise NoteFormatError(f"note entry {index} needs a whole-number id")
        if note_id in graph.notes:
            raise NoteFormatError(f"two notes have the id {note_id}")
        text = raw.get("text", "")
        if not isinstance(text, str):
            raise NoteFormatError(f"note {note_id}: its text should be text")
        graph.add_note(
            Note(
                note_id,
                text,
                _pair(raw.get("pos"), (0.0, 0.0)),
                _pair(raw.get("size"), (260.0, 120.0)),
                raw.get("markdown") is True,
            )
        )


def _pair(value: Any, default: tuple[float, float]) -> tuple[float, float]:
    """Two finite numbers as floats, else ``default`` (a note is still worth keeping)."""
    if not (isinstance(value, list) and len(value) == 2):
        return default
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return default
    try:
        pair = (float(value[0]), float(value[1]))
    except OverflowError:
        return default
    return pair if all(math.isfinite(v) for v in pair) else default
