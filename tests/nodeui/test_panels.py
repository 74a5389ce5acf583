"""The library, the inspector and the viewer, without a window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QUndoStack
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QPlainTextEdit, QSpinBox

from core.graph import png
from core.graph.commands import SetParam
from core.graph.model import Graph
from core.graph.workflow import PNG_KEY
from nodes import build_registry
from nodeui.panels.inspector import Inspector
from nodeui.panels.library import NodeLibrary
from nodeui.panels.spin_boxes import BigIntSpinBox
from nodeui.panels.viewer import ImageViewer
from nodeui.undo import push
from tests.nodeui import shell_fakes


def test_library_lists_categories_and_filters_by_search(qtbot):
    library = NodeLibrary(build_registry())
    qtbot.addWidget(library)
    assert "SaveImage" in library.visible_type_ids()
    library.search.setText("gradient")
    assert library.visible_type_ids() == ["GradientImage"]
    with qtbot.waitSignal(library.addNodeRequested) as blocker:
        library.search.returnPressed.emit()
    assert blocker.args == ["GradientImage"]
    item = next(i for i in library.node_items() if not i.isHidden())
    assert library.tree.mimeData([item]).text() == "GradientImage"


def test_library_search_enter_adds_the_best_match_not_the_first_category_hit(qtbot):
    from PySide6.QtTest import QTest

    library = NodeLibrary(build_registry())
    qtbot.addWidget(library)
    library.show()
    qtbot.waitExposed(library)
    QTest.mouseClick(library.search, Qt.MouseButton.LeftButton)
    QTest.keyClicks(library.search, "vae decode")
    shown = library.visible_type_ids()
    # Other nodes mention both words too, and come first in the tree's category order.
    assert shown.index("VAEDecode") > 0
    assert library.tree.currentItem().data(0, Qt.ItemDataRole.UserRole) == "VAEDecode"
    with qtbot.waitSignal(library.addNodeRequested) as blocker:
        QTest.keyClick(library.search, Qt.Key.Key_Return)
    assert blocker.args == ["VAEDecode"]
    library.search.clear()
    QTest.keyClicks(library.search, "ksampler")
    with qtbot.waitSignal(library.addNodeRequested) as blocker:
        QTest.keyClick(library.search, Qt.Key.Key_Return)
    assert blocker.args == ["KSampler"]


def _inspector(qtbot, graph):
    stack = QUndoStack()
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_document(graph, stack, graph.registry)
    return inspector, stack


def test_inspector_builds_fitting_editors_and_edits_undoably(qtbot):
    reg = build_registry()
    graph = Graph(reg)
    grad = graph.add_node("GradientImage").id
    text = graph.add_node("String").id
    flag = graph.add_node("Boolean").id
    number = graph.add_node("Float").id
    inspector, stack = _inspector(qtbot, graph)

    inspector.show_node(grad)
    width = inspector.editors["width"].widget
    assert isinstance(width, QSpinBox)
    assert (width.minimum(), width.maximum(), width.singleStep()) == (1, 16384, 8)
    assert isinstance(inspector.editors["direction"].widget, QComboBox)
    width.setValue(320)
    width.setValue(328)  # one editing session: merged into one undo step
    assert graph.node(grad).params["width"] == 328
    assert stack.count() == 1
    stack.undo()
    assert graph.node(grad).params["width"] == 512 and width.value() == 512

    inspector.show_node(text)
    assert isinstance(inspector.editors["value"].widget, QPlainTextEdit)
    inspector.show_node(flag)
    box = inspector.editors["value"].widget
    assert isinstance(box, QCheckBox)
    box.setChecked(True)
    assert graph.node(flag).params["value"] is True
    inspector.show_node(number)
    assert isinstance(inspector.editors["value"].widget, QDoubleSpinBox)


def test_inspector_follows_edits_made_elsewhere(qtbot):
    graph = Graph(build_registry())
    grad = graph.add_node("GradientImage").id
    inspector, stack = _inspector(qtbot, graph)
    inspector.show_selection([grad])
    push(stack, graph, SetParam(grad, "direction", "vertical"))
    assert inspector.editors["direction"].widget.currentText() == "vertical"
    stack.undo()
    assert inspector.editors["direction"].widget.currentText() == "diagonal"
    graph.remove_node(grad)
    assert inspector.node_id is None and not inspector.editors


def test_dynamic_choices_come_from_the_registry(qtbot):
    reg = build_registry()
    graph = Graph(reg)
    loader = graph.add_node("LoadCheckpoint").id
    inspector, _ = _inspector(qtbot, graph)
    inspector.show_node(loader)
    spec = graph.spec(loader).input("ckpt_name")
    combo = inspector.editors["ckpt_name"].widget
    offered = [combo.itemText(i) for i in range(combo.count())]
    assert set(reg.choices(spec)) <= set(offered)


def test_seed_has_a_big_editor_and_an_after_run_mode(qtbot):
    graph = shell_fakes.slow_graph(shell_fakes.registry())
    inspector, stack = _inspector(qtbot, graph)
    inspector.show_node(1)
    seed = inspector.editors["seed"].widget
    assert isinstance(seed, BigIntSpinBox)
    seed.setValue(2**63 + 5)
    assert graph.node(1).params["seed"] == 2**63 + 5
    inspector.seed_rows["seed"].mode.setCurrentText("increment")
    assert graph.node(1).ui["control_after_run"] == {"seed": "increment"}
    stack.undo()
    assert inspector.seed_rows["seed"].mode.currentText() == "fixed"


def test_linked_widget_cannot_be_edited_in_the_inspector(qtbot):
    graph = Graph(build_registry())
    size = graph.add_node("Int", params={"value": 64}).id
    grad = graph.add_node("GradientImage").id
    inspector, _ = _inspector(qtbot, graph)
    inspector.show_node(grad)
    assert inspector.editors["width"].widget.isEnabled()
    graph.connect(size, "INT", grad, "width")
    assert not inspector.editors["width"].widget.isEnabled()


def test_viewer_saves_png_with_the_workflow(qtbot, tmp_path):
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    image = QImage(32, 16, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.red)
    workflow = {"format": "latentloom", "version": 2, "nodes": []}
    viewer.set_images([image, image], workflow)
    assert viewer.thumbs.count() == 2
    viewer.view.set_zoom(1.0)
    assert viewer.view.zoom() == 1.0
    viewer.view.fit()
    path = viewer.save_as(tmp_path / "out.png")
    assert PNG_KEY in png.read_text_chunks(path.read_bytes())
    assert QImage(str(path)).width() == 32


def test_library_drags_what_the_canvas_accepts():
    from nodeui.canvas import NODE_MIME as CANVAS_MIME
    from nodeui.panels.library import NODE_MIME

    assert NODE_MIME == CANVAS_MIME


def test_prompt_typing_is_one_undo_step_per_visit(qtbot):
    graph = Graph(build_registry())
    text = graph.add_node("String").id
    inspector, stack = _inspector(qtbot, graph)
    inspector.show_node(text)
    edit = inspector.editors["value"].widget
    edit.setPlainText("a red")
    edit.setPlainText("a red circle")
    assert graph.node(text).params["value"] == "a red circle" and stack.count() == 1
    edit.left.emit()  # the user leaves the field
    edit.setPlainText("a red circle on blue")
    assert stack.count() == 2
    stack.undo()
    assert edit.toPlainText() == "a red circle"


def test_library_lists_everyday_categories_before_the_advanced_ones(qtbot):
    library = NodeLibrary(build_registry())
    qtbot.addWidget(library)
    tree = library.tree
    names = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    advanced = [i for i, name in enumerate(names) if name.startswith("advanced")]
    everyday = [
        i for i, name in enumerate(names) if name in ("loaders", "sampling", "conditioning")
    ]
    assert advanced and everyday and max(everyday) < min(advanced)
