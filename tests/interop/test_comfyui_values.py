"""ComfyUI files whose values are easy to misread: old seed checkboxes, Primitive nodes
feeding combos, type names with stray spaces, node types found by name in the registry."""

from __future__ import annotations

import json

import pytest

from core.engine import validate
from core.graph import types as t
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput
from nodes.interop import open_workflow
from nodes.interop.comfyui import import_ui
from nodes.interop.comfyui.mapping import TypeMapping, control_mode, widget_values_to_params
from nodes.interop.report import ReportBuilder
from tests.interop.conftest import CKPT, FIXTURES

KSAMPLER_VALUES = {"seed": 8566257, "steps": 12, "cfg": 8.0, "sampler_name": "euler"}


def _open(name, registry):
    return open_workflow(FIXTURES / name, registry)


def test_old_boolean_after_the_seed_does_not_shift_later_values(registry):
    result = _open("old_seed_checkbox_ui04.json", registry)
    sampler = result.workflow.graph.node(3)
    assert {k: sampler.params[k] for k in KSAMPLER_VALUES} == KSAMPLER_VALUES
    assert sampler.params["scheduler"] == "normal" and sampler.params["denoise"] == 1.0
    # The old "randomize" checkbox, ticked: a new seed after every run.
    assert sampler.ui == {"control_after_run": {"seed": "randomize"}}
    assert result.report.misfits == ()
    assert [p for p in validate(result.workflow.graph) if p.node_id == 3] == []


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ([5, "fixed", 20, 7.0, "euler", "karras", 0.5], "fixed"),
        ([5, "Increment", 20, 7.0, "euler", "karras", 0.5], "increment"),
        ([5, "decrement", 20, 7.0, "euler", "karras", 0.5], "decrement"),
        ([5, False, 20, 7.0, "euler", "karras", 0.5], "fixed"),
        ([5, 20, 7.0, "euler", "karras", 0.5], None),  # no control value at all
    ],
)
def test_any_kind_of_control_value_after_a_seed_is_read(registry, values, mode):
    spec = registry.get("KSampler")
    widgets = ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")
    mapping = TypeMapping("KSampler", "KSampler", widgets, seeds=frozenset({"seed"}))
    report = ReportBuilder()
    params, control = widget_values_to_params(mapping, spec, values, report, "node 3")
    assert params == {
        "seed": 5,
        "steps": 20,
        "cfg": 7.0,
        "sampler_name": "euler",
        "scheduler": "karras",
        "denoise": 0.5,
    }
    assert control == ({"seed": mode} if mode else {})
    assert report.warnings == [] and report.misfits == []


def test_a_boolean_before_a_boolean_widget_is_that_widgets_value():
    boolean = WidgetInput("flag", t.BOOLEAN, False)
    assert control_mode(True, boolean) is None
    assert control_mode(True, None) == "randomize"
    assert control_mode("fixed", boolean) == "fixed"
    assert control_mode(7) is None


def test_values_read_out_of_place_are_reported_as_misfits(registry):
    data = json.loads((FIXTURES / "txt2img_ui04.json").read_text())
    sampler = next(n for n in data["nodes"] if n["id"] == 3)
    sampler["widgets_values"] = [1, "randomize", "euler", 20, 8.0, "normal", 1.0]
    _, report = import_ui(data, registry)
    assert "node 3 (KSampler): steps='euler'" in report.misfits
    assert any("steps='euler' is not the kind of value" in w for w in report.warnings)


def test_primitive_nodes_feeding_combos_keep_their_links_and_values(registry):
    result = _open("primitive_combos_ui04.json", registry)
    graph = result.workflow.graph
    links = {(lk.src, lk.src_output, lk.dst, lk.dst_input) for lk in graph.links}
    assert graph.node(12).type_id == "String" and graph.node(12).title == "sampler"
    assert graph.node(12).params == {"value": "euler_ancestral"}
    assert (12, "STRING", 3, "sampler_name") in links
    # Choices written as a list (newer files) work the same way.
    assert graph.node(13).params == {"value": CKPT}
    assert (13, "STRING", 4, "ckpt_name") in links
    assert result.report.unknown == () and result.report.warnings == ()
    assert validate(graph) == []


def test_type_names_with_stray_spaces_map(registry):
    result = _open("old_seed_checkbox_ui04.json", registry)
    average = result.workflow.graph.node(10)
    assert average.type_id == "ConditioningAverage" and average.placeholder is None
    assert average.params == {"conditioning_to_strength": 0.75}
    assert not [u for u in result.report.unknown if u.node_id == 10]


def _sharpen_registry(registry: NodeRegistry) -> NodeRegistry:
    """The test registry plus a node type named as a ComfyUI custom node, with a seed."""
    specs = [s for s in registry if s.type_id != "Reroute"]
    specs.append(
        NodeSpec(
            "ImageSharpenPlus",
            "Sharpen+",
            "image",
            lambda ctx, **kw: kw["image"],
            inputs=(
                SocketInput("image", t.IMAGE),
                WidgetInput("seed", t.INT, 0, control_after_run=True),
                WidgetInput("radius", t.INT, 1),
                WidgetInput("method", t.STRING, "lanczos"),
            ),
            outputs=(Output("IMAGE", t.IMAGE),),
        )
    )
    return NodeRegistry(specs)


def test_node_types_the_registry_has_by_comfyuis_name_import_without_a_table_entry(registry):
    extended = _sharpen_registry(registry)
    data = {
        "nodes": [
            {
                "id": 1,
                "type": "ImageSharpenPlus",
                "inputs": [{"name": "image", "type": "IMAGE", "link": None}],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}],
                "widgets_values": [9, "fixed", 3, "bicubic"],
            }
        ],
        "links": [],
        "version": 0.4,
    }
    workflow, report = import_ui(data, extended)
    node = workflow.graph.node(1)
    assert node.placeholder is None and report.unknown == ()
    assert node.params == {"seed": 9, "radius": 3, "method": "bicubic"}
    assert node.ui == {"control_after_run": {"seed": "fixed"}}


def test_note_and_markdown_note_become_notes_not_placeholders(registry):
    data = json.loads((FIXTURES / "txt2img_ui1.json").read_text())
    data["nodes"].append(
        {
            "id": 40,
            "type": "MarkdownNote",
            "pos": [100, 900],
            "size": [400, 200],
            "mode": 0,
            "widgets_values": ["## Settings\n\n- **cfg** 6.5"],
        }
    )
    result = _open("old_seed_checkbox_ui04.json", registry)
    assert result.report.unknown == () and result.report.notes == 1
    [note] = result.workflow.graph.notes.values()
    assert note.text.startswith("The seed's box was a checkbox") and not note.markdown
    assert ", 1 note(s)" in result.report.summary().splitlines()[0]
    workflow, report = import_ui(data, registry)
    [markdown] = workflow.graph.notes.values()
    assert markdown.markdown and markdown.text == "## Settings\n\n- **cfg** 6.5"
    assert (markdown.pos, markdown.size) == ((100.0, 900.0), (400.0, 200.0))
    assert 40 not in workflow.graph and report.unknown == ()


@pytest.mark.parametrize(
    ("stored", "read"),
    [("sample_dpmpp_2m", "dpmpp_2m"), ("sample_dpmpp_sde", "dpmpp_sde"), ("euler", "euler")],
)
def test_old_k_diffusion_sampler_names_read_as_todays(registry, stored, read):
    data = json.loads((FIXTURES / "txt2img_ui04.json").read_text())
    sampler = next(n for n in data["nodes"] if n["id"] == 3)
    sampler["widgets_values"] = [5, "fixed", 20, 7.0, stored, "karras", 1.0]
    workflow, _ = import_ui(data, registry)
    assert workflow.graph.node(3).params["sampler_name"] == read
    assert [p for p in validate(workflow.graph) if p.node_id == 3] == []
    # the list the user picks from keeps one name per sampler
    assert not any(
        c.startswith("sample_") for c in registry.get("KSampler").input("sampler_name").choices
    )
