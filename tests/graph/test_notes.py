"""Notes: graph-model objects edited through undoable commands, saved with the workflow, and
never part of what runs."""

from __future__ import annotations

import json

import pytest

from core.engine import make_plan
from core.graph import commands as c
from core.graph.errors import DuplicateIdError, NoteNotFoundError
from core.graph.model import Graph, Note, NoteAdded, NoteChanged, NoteRemoved
from core.graph.workflow import WorkflowError, from_dict, to_dict
from tests.graph.registry import make_registry


def _graph() -> Graph:
    graph = Graph(make_registry())
    latent = graph.add_node("Latent").id
    save = graph.add_node("Save", pos=(300, 0)).id
    graph.connect(latent, "LATENT", save, "latent")
    return graph


def test_add_edit_move_and_remove_notes_with_undo_and_redo():
    graph = _graph()
    empty = graph.state()
    stack = c.UndoStack(graph)
    stack.push(c.AddNote("Seed 42 looks best", (10, 20), markdown=True))
    assert graph.notes == {1: Note(1, "Seed 42 looks best", (10.0, 20.0), (260.0, 120.0), True)}
    added = graph.state()
    stack.push(c.EditNote(1, text="Seed 7 looks best"))
    stack.push(c.EditNote(1, pos=(50, 60)))
    assert graph.notes[1].text == "Seed 7 looks best" and graph.notes[1].pos == (50.0, 60.0)
    stack.push(c.RemoveNotes([1]))
    assert graph.notes == {}
    for _ in range(3):
        stack.undo()
    assert graph.state() == added
    stack.undo()
    assert graph.state() == empty
    for _ in range(4):
        stack.redo()
    assert graph.notes == {}
    stack.undo()
    assert graph.notes[1] == Note(1, "Seed 7 looks best", (50.0, 60.0), (260.0, 120.0), True)


def test_typing_and_dragging_a_note_merge_into_one_step_per_gesture():
    graph = _graph()
    stack = c.UndoStack(graph)
    stack.push(c.AddNote("a"))
    typing, drag = object(), object()
    for text in ("ab", "abc", "abcd"):
        stack.push(c.EditNote(1, gesture=typing, text=text))
    for x in (5, 10, 15):
        stack.push(c.EditNote(1, gesture=drag, pos=(x, 0)))
    assert len(stack) == 3
    stack.undo()
    assert graph.notes[1].pos == (0.0, 0.0) and graph.notes[1].text == "abcd"
    stack.undo()
    assert graph.notes[1].text == "a"


def test_notes_are_announced_to_observers_and_refused_when_unknown():
    graph = _graph()
    heard: list = []
    graph.subscribe(heard.append)
    graph.add_note(Note(3, "x"))
    graph.update_note(3, size=(100, 50))
    graph.remove_note(3)
    assert heard == [NoteAdded(3), NoteChanged(3), NoteRemoved(3)]
    with pytest.raises(NoteNotFoundError):
        graph.remove_note(3)
    with pytest.raises(NoteNotFoundError):
        c.UndoStack(graph).push(c.EditNote(9, text="y"))
    graph.add_note(Note(1, "x"))
    with pytest.raises(DuplicateIdError):
        graph.add_note(Note(1, "y"))


def test_notes_survive_save_and_load_and_never_run():
    graph = _graph()
    graph.add_note(Note(1, "# Heading\n\n*why* this seed", (5, 6), (300, 90), markdown=True))
    graph.add_note(Note(4, "plain", (-20, 40)))
    data = json.loads(json.dumps(to_dict(graph)))
    assert data["version"] == 2 and [n["id"] for n in data["notes"]] == [1, 4]
    loaded = from_dict(data, graph.registry).graph
    assert loaded.state() == graph.state()
    assert set(make_plan(loaded).order) == {1, 2}  # the two nodes; notes are not planned


def test_files_without_notes_are_unchanged_and_copies_of_nodes_leave_notes_out():
    graph = _graph()
    assert "notes" not in to_dict(graph)
    graph.add_note(Note(1, "x"))
    assert "notes" not in to_dict(graph, node_ids={1})


@pytest.mark.parametrize(
    ("notes", "words"),
    [
        ({"id": 1}, "'notes' should be a list"),
        ([{"id": "one", "text": "x"}], "whole-number id"),
        ([{"id": 1, "text": 5}], "its text should be text"),
        ([{"id": 1, "text": "a"}, {"id": 1, "text": "b"}], "two notes have the id 1"),
    ],
)
def test_bad_notes_name_the_field(notes, words):
    data = to_dict(_graph())
    data["notes"] = notes
    with pytest.raises(WorkflowError) as info:
        from_dict(data, make_registry(), "notes.json")
    assert words in str(info.value) and "notes.json" in str(info.value)
    assert "field 'notes'" in str(info.value)
