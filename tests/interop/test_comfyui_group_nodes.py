"""ComfyUI's older group nodes (``extra.groupNodes``, type ``workflow/NAME``) import as
LatentLoom subgraphs."""

from __future__ import annotations

import json

from core.graph import workflow as wf
from core.graph.spec import SocketInput, WidgetInput
from nodes.interop import open_workflow
from tests.interop.conftest import FIXTURES

CORPUS_FILE = FIXTURES.parent / "corpus" / "comfyui_examples" / "edit_models__sdxl_edit_model.png"


COND = "CONDITIONING"


def _inner(type_, index, widgets=None, inputs=(), outputs=()):
    node = {
        "type": type_,
        "index": index,
        "pos": [100 * index, 0],
        "mode": 0,
        "inputs": [{"name": n, "type": k, "link": None} for n, k in inputs],
        "outputs": [{"name": n, "type": k, "links": []} for n, k in outputs],
    }
    if widgets is not None:
        node["widgets_values"] = widgets
    return node


def _group() -> dict:
    """A reroute carrying CLIP from outside, two prompts and a sampler; the sampler's latent
    leaves the group."""
    return {
        "nodes": [
            _inner("Reroute", 0, None, [("", "*")], [("", "*")]),
            _inner("CLIPTextEncode", 1, ["a cat"], [("clip", "CLIP")], [(COND, COND)]),
            _inner("CLIPTextEncode", 2, ["blurry"], [("clip", "CLIP")], [(COND, COND)]),
            _inner(
                "KSampler",
                3,
                [1, "fixed", 20, 8.0, "euler", "normal", 1.0],
                [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                 ("latent_image", "LATENT")],
                [("LATENT", "LATENT")],
            ),
        ],
        "links": [
            [None, 1, 0, 0, 10, "CLIP"],
            [0, 0, 1, 0, 5, "CLIP"],
            [0, 0, 2, 0, 5, "CLIP"],
            [1, 0, 3, 1, 6, "CONDITIONING"],
            [2, 0, 3, 2, 7, "CONDITIONING"],
        ],
        "external": [[3, 0, "LATENT"]],
        "config": {"0": {"input": {"CLIP": {"name": "clip"}}}},
    }  # fmt: skip


def _instance(node_id, values, y=0):
    return {
        "id": node_id,
        "type": "workflow/Prompted sampler",
        "pos": [400, y],
        "mode": 0,
        "inputs": [
            {"name": "clip", "type": "CLIP", "link": 1 + node_id},
            {"name": "model", "type": "MODEL", "link": 2 + node_id},
            {"name": "latent_image", "type": "LATENT", "link": 3 + node_id},
        ],
        "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}],
        "widgets_values": values,
    }


def _workflow(tmp_path):
    data = {
        "last_node_id": 40,
        "nodes": [
            {"id": 10, "type": "CheckpointLoaderSimple", "pos": [0, 0], "mode": 0,
             "widgets_values": ["model.safetensors"],
             "outputs": [{"name": "MODEL", "type": "MODEL"}, {"name": "CLIP", "type": "CLIP"},
                         {"name": "VAE", "type": "VAE"}]},
            {"id": 11, "type": "EmptyLatentImage", "pos": [0, 300], "mode": 0,
             "widgets_values": [512, 512, 1]},
            _instance(20, ["a dog", "ugly", 42, "randomize", 30, 6.5, "euler", "karras", 0.9]),
            _instance(30, ["a fox", "", 7, "fixed", 12, 4.0, "ddim", "normal", 1.0], 300),
        ],
        "links": [
            [link_id, src, src_slot, dst, dst_slot, kind]
            for dst in (20, 30)
            for link_id, src, src_slot, dst_slot, kind in (
                (1 + dst, 10, 1, 0, "CLIP"),
                (2 + dst, 10, 0, 1, "MODEL"),
                (3 + dst, 11, 0, 2, "LATENT"),
            )
        ],
        "extra": {"groupNodes": {"Prompted sampler": _group()}},
        "version": 0.4,
    }  # fmt: skip
    path = tmp_path / "group.json"
    path.write_text(json.dumps(data))
    return path


def test_a_group_node_becomes_one_definition_with_inputs_outputs_and_promoted_widgets(
    tmp_path, registry
):
    opened = open_workflow(_workflow(tmp_path), registry)
    graph = opened.workflow.graph
    assert not opened.report.unknown
    assert len(graph.subgraphs) == 1
    definition = graph.subgraphs.get(graph.node(20).type_id)
    assert graph.node(30).type_id == definition.id and definition.name == "Prompted sampler"
    inner = definition.graph
    assert sorted(n.type_id for n in inner if n.id > 0) == [
        "CLIPTextEncode",
        "CLIPTextEncode",
        "KSampler",
        "Reroute",
    ]
    spec = graph.spec(20)
    sockets = [i.name for i in spec.inputs if isinstance(i, SocketInput)]
    widgets = [i.name for i in spec.inputs if isinstance(i, WidgetInput)]
    assert sockets == ["clip", "model", "latent_image"]
    # The second prompt's "text" takes its node's type first, as ComfyUI names it.
    assert widgets[:3] == ["text", "CLIPTextEncode text", "seed"]
    assert [o.name for o in spec.outputs] == ["LATENT"]
    assert graph.link_to(20, "clip").src == 10 and graph.link_to(30, "latent_image").src == 11


def test_each_instance_keeps_its_own_widget_values_and_seed_mode(tmp_path, registry):
    graph = open_workflow(_workflow(tmp_path), registry).workflow.graph
    first, second = graph.node(20), graph.node(30)
    assert first.params["text"] == "a dog" and first.params["CLIPTextEncode text"] == "ugly"
    assert first.params["seed"] == 42 and first.params["steps"] == 30
    assert first.params["scheduler"] == "karras" and first.params["denoise"] == 0.9
    assert first.ui["control_after_run"] == {"seed": "randomize"}
    assert second.params["text"] == "a fox" and second.params["sampler_name"] == "ddim"
    # The definition keeps the group's own values as the defaults.
    inner = graph.subgraphs.get(first.type_id).graph
    texts = sorted(n.params["text"] for n in inner if n.type_id == "CLIPTextEncode")
    assert texts == ["a cat", "blurry"]


def test_an_imported_group_saves_and_opens_as_a_latentloom_subgraph(tmp_path, registry):
    graph = open_workflow(_workflow(tmp_path), registry).workflow.graph
    path = tmp_path / "saved.json"
    wf.save_workflow(graph, path)
    again = wf.load_workflow(path, registry).graph
    assert again.node(20).params == graph.node(20).params
    assert again.spec(20).inputs == graph.spec(20).inputs


def test_the_corpus_group_node_opens_from_the_workflow_not_the_prompt(registry):
    opened = open_workflow(CORPUS_FILE, registry)
    assert opened.report.source_format.value == "comfyui-ui"
    graph = opened.workflow.graph
    instance = graph.node(37)
    definition = graph.subgraphs.get(instance.type_id)
    assert definition.name == "IP2PSampler"
    assert [o.name for o in graph.spec(37).outputs] == ["output", "denoised_output"]
    sockets = [i.name for i in graph.spec(37).inputs if isinstance(i, SocketInput)]
    assert sockets == ["model", "positive", "negative", "vae", "pixels"]
    assert instance.params["cfg_text"] == 5 and instance.params["cfg_image"] == 1.5
    assert instance.params["noise_seed"] == 11652752290163
    assert graph.link_to(8, "samples").src == 37
