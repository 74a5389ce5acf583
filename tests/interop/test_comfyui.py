"""ComfyUI workflows: both UI format versions and the API format, imported, validated, run on
a tiny model, and exported back."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from core.engine import validate
from core.graph.model import Graph
from core.graph.spec import WidgetInput
from nodes.interop import MAPPINGS, ComfyExportError, SourceFormat, open_workflow, to_comfy_api
from nodes.interop.comfyui import import_api
from nodes.interop.comfyui.mapping import active_mappings
from tests.interop.conftest import CKPT, FIXTURES, copy_fixture, saved_files, write_png


def _open(name, registry):
    return open_workflow(FIXTURES / name, registry)


def _links(graph: Graph) -> set[tuple]:
    return {(lk.src, lk.src_output, lk.dst, lk.dst_input) for lk in graph.links}


def _meaning(graph: Graph) -> dict:
    """What a graph computes: node types, params, flags and links (not how it looks)."""
    return {
        "nodes": {n.id: (n.type_id, n.params, n.muted, n.bypassed) for n in graph},
        "links": _links(graph),
    }


DEFAULT_LINKS = {
    (4, "CLIP", 6, "clip"),
    (4, "CLIP", 7, "clip"),
    (4, "MODEL", 3, "model"),
    (6, "CONDITIONING", 3, "positive"),
    (7, "CONDITIONING", 3, "negative"),
    (5, "LATENT", 3, "latent_image"),
    (3, "LATENT", 8, "samples"),
    (4, "VAE", 8, "vae"),
    (8, "IMAGE", 9, "images"),
}


def test_every_mapped_widget_lands_in_a_param_of_our_spec(registry):
    for mapping in active_mappings(registry):
        spec = registry.get(mapping.our_type)
        for comfy_name in mapping.widgets:
            param = mapping.param_for(comfy_name)
            if param is not None:
                assert isinstance(spec.input(param), WidgetInput), (mapping.comfy_type, param)
        for seed in mapping.seeds:
            assert seed in mapping.widgets
    # Entries of node types this install lacks wait for them; the others are all in use.
    for mapping in MAPPINGS:
        if mapping.our_type in ("KSampler", "LoadCheckpoint", "CLIPTextEncode", "LoadLoRA"):
            assert mapping in active_mappings(registry)


def test_default_workflow_ui04_maps_positional_widgets(registry):
    result = _open("txt2img_ui04.json", registry)
    graph, report = result.workflow.graph, result.report
    assert report.source_format is SourceFormat.COMFYUI_UI and report.format_version == "0.4"
    assert report.mapped == 7 and report.unknown == () and report.warnings == ()
    types = {n.id: n.type_id for n in graph}
    assert types == {
        3: "KSampler",
        4: "LoadCheckpoint",
        5: "EmptyLatentImage",
        6: "CLIPTextEncode",
        7: "CLIPTextEncode",
        8: "VAEDecode",
        9: "SaveImage",
    }
    sampler = graph.node(3)
    # [seed, "randomize", steps, cfg, sampler_name, scheduler, denoise]: the control value is
    # skipped and kept as the seed's after-run mode.
    assert sampler.params == {
        "seed": 156680208700286,
        "steps": 2,
        "cfg": 8.0,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
    }
    assert sampler.ui == {"control_after_run": {"seed": "randomize"}}
    assert graph.node(4).params["ckpt_name"] == CKPT
    assert graph.node(5).params == {"width": 32, "height": 32, "batch_size": 1}
    assert graph.node(7).params == {"text": "text, watermark"}
    assert graph.node(9).params == {"filename_prefix": "ComfyUI"}
    assert graph.node(7).pos == (413.0, 389.0) and graph.node(7).size == (425.0, 180.0)
    assert all(n.title is None for n in graph)  # display names are not custom titles
    assert _links(graph) == DEFAULT_LINKS
    assert validate(graph) == []


def test_ui_format_1_with_link_objects_and_named_widget_values(registry):
    result = _open("txt2img_ui1.json", registry)
    graph = result.workflow.graph
    assert result.report.format_version == "1" and result.report.warnings == ()
    assert _links(graph) == DEFAULT_LINKS
    assert graph.node(5).params == {"width": 32, "height": 32, "batch_size": 1}
    assert graph.node(3).params["seed"] == 42 and graph.node(3).params["cfg"] == 6.5
    assert graph.node(3).params["scheduler"] == "karras"
    assert graph.node(3).ui == {"control_after_run": {"seed": "increment"}}


def test_api_format_gives_the_same_graph_as_the_ui_format(registry):
    api = _open("txt2img_api.json", registry)
    ui = _open("txt2img_ui04.json", registry)
    assert api.report.source_format is SourceFormat.COMFYUI_API
    assert _meaning(api.workflow.graph) == _meaning(ui.workflow.graph)
    # No positions in the API format: laid out left to right by depth, without overlaps.
    pos = {n.id: n.pos for n in api.workflow.graph}
    assert pos[4][0] < pos[6][0] < pos[3][0] < pos[8][0] < pos[9][0]
    assert len(set(pos.values())) == len(pos)


def test_split_sampling_maps_enable_disable_to_booleans(registry):
    graph = _open("split_sampling_api.json", registry).workflow.graph
    base, refine = graph.node(10), graph.node(11)
    assert base.type_id == refine.type_id == "KSamplerAdvanced"
    assert (base.params["add_noise"], base.params["return_with_leftover_noise"]) == (True, True)
    assert (refine.params["add_noise"], refine.params["return_with_leftover_noise"]) == (
        False,
        False,
    )
    assert (base.params["start_at_step"], base.params["end_at_step"]) == (0, 2)
    assert base.params["noise_seed"] == 99 and refine.params["start_at_step"] == 2
    assert (base.title, refine.title, graph.node(7).title) == ("Base", "Refine", "Negative")
    assert (10, "LATENT", 11, "latent_image") in _links(graph)


def test_lora_reroutes_groups_muted_and_bypassed_nodes(registry):
    result = _open("lora_groups_reroutes_ui04.json", registry)
    graph = result.workflow.graph
    assert result.report.warnings == ()
    # Windows-style sub-folders become our "/" names, which the loader resolves.
    assert graph.node(4).params["ckpt_name"] == f"sd15/{CKPT}"
    assert graph.node(10).params == {
        "lora_name": "style.safetensors",
        "strength_model": 0.8,
        "strength_clip": 0.6,
    }
    assert graph.node(14).params == {"stop_at_clip_layer": -2}
    assert graph.node(3).params["sampler_name"] == "dpmpp_2m"
    assert graph.node(3).ui == {"control_after_run": {"seed": "increment"}}
    assert {n.id for n in graph.reroutes} == {20, 21}
    links = _links(graph)
    assert {(10, "MODEL", 20, "value"), (20, "value", 3, "model")} <= links
    assert {(4, "VAE", 21, "value"), (21, "value", 8, "vae")} <= links
    assert graph.node(15).bypassed and not graph.node(15).muted
    assert graph.node(16).muted and not graph.node(16).bypassed
    groups = {g.title: g for g in graph.groups.values()}
    assert groups["Model"].nodes == frozenset({4, 10, 14})
    assert groups["Prompt"].nodes == frozenset({6, 7, 5})
    assert groups["Output"].nodes == frozenset({8, 9, 16})
    assert groups["Model"].color == "#b58b2a"
    assert groups["Output"].rect == (1880.0, 100.0, 520.0, 600.0)
    assert validate(graph) == []


def test_unknown_custom_node_is_kept_reported_and_linked(registry):
    result = _open("custom_node_ui1.json", registry)
    graph, report = result.workflow.graph, result.report
    assert {(u.node_id, u.type_id) for u in report.unknown} == {(31, "ImageSharpenPlus")}
    # ComfyUI's Note is a text note here too, not an unknown node.
    assert 33 not in graph and graph.notes[1].text == "Made for the interop tests."
    assert (graph.notes[1].pos, graph.notes[1].size) == ((0.0, 800.0), (300.0, 100.0))
    assert any("node 31" in w and "'ImageSharpenPlus'" in w for w in report.warnings)
    sharpen = graph.node(31)
    spec = graph.spec(31)
    assert spec.placeholder and sharpen.title == "Sharpen (custom)"
    assert [(s.name, s.type) for s in spec.sockets] == [
        ("image", "IMAGE"),
        ("strength_mask", "MASK"),
    ]
    assert [(o.name, o.type) for o in spec.outputs] == [
        ("IMAGE", "IMAGE"),
        ("DETAIL", "SHARP_DETAIL"),
    ]
    assert sharpen.params == {"widget_0": 2, "widget_1": 0.75, "widget_2": "lanczos"}
    assert {(8, "IMAGE", 31, "image"), (31, "IMAGE", 32, "images")} <= _links(graph)
    # The frontend-only Primitive node becomes an Int node driving the seed.
    assert graph.node(30).type_id == "Int" and graph.node(30).params == {"value": 777}
    assert graph.node(30).title == "Seed"
    assert (30, "INT", 3, "seed") in _links(graph)
    problems = validate(graph)
    assert [(p.node_id, p.code) for p in problems] == [(31, "unknown_type")]
    assert validate(graph, outputs=[9]) == []


def test_missing_checkpoint_is_reported_with_the_name_asked_for(empty_registry):
    graph = _open("txt2img_ui04.json", empty_registry).workflow.graph
    [problem] = [p for p in validate(graph) if p.node_id == 4]
    assert problem.field == "ckpt_name"
    assert f"'{CKPT}'" in problem.message and "checkpoints" in problem.message


#: Requested picture size and the nodes to run (None: every output node). The tiny VAE
#: upsamples latents by 2 where SD's upsamples by 8; the sampler remakes ComfyUI's empty
#: latents for it, so pictures come out at the requested size.
RUNS = {
    "txt2img_ui04.json": ((32, 32), None),
    "txt2img_ui1.json": ((32, 32), None),
    "txt2img_api.json": ((32, 32), None),
    "hires_two_pass_ui1.json": ((48, 48), None),
    "split_sampling_api.json": ((32, 32), None),
    "lora_groups_reroutes_ui04.json": ((32, 32), None),
    "custom_node_ui1.json": ((32, 32), [9]),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_imported_workflow_runs_on_a_tiny_model(name, registry, executor, tmp_path):
    size, outputs = RUNS[name]
    graph = _open(name, registry).workflow.graph
    report = executor.run(graph, outputs=outputs, output_dir=tmp_path, device="cpu")
    assert report.status == "ok"
    [file] = saved_files(report)
    with Image.open(file) as picture:
        assert picture.size == size
    if name.startswith("lora"):
        assert report.status_of(15) == "bypassed" and 16 not in report.entries  # 16 muted


@pytest.mark.parametrize("name", ["img2img_ui04.json", "inpaint_ui04.json"])
def test_image_workflows_find_the_picture_beside_the_file_and_run(
    name, registry, executor, tmp_path
):
    path = copy_fixture(name, tmp_path)
    image_name = json.loads(path.read_text())["nodes"]
    load = next(n for n in image_name if n["type"] == "LoadImage")
    relative = load["widgets_values"][0].removesuffix(" [input]")
    (tmp_path / "input" / relative).parent.mkdir(parents=True, exist_ok=True)
    write_png(tmp_path / "input" / relative, {}, alpha=True)
    result = open_workflow(path, registry)
    graph = result.workflow.graph
    assert result.report.warnings == ()
    assert graph.node(10).params["image"] == str((tmp_path / "input" / relative).resolve())
    if name.startswith("inpaint"):
        assert graph.node(11).params == {"grow_mask_by": 6}
        assert graph.node(12).params == {"expand": 2, "feather": 0.0, "tapered_corners": True}
        assert (10, "MASK", 12, "mask") in _links(graph)
    else:
        assert graph.node(3).params["denoise"] == 0.6
    report = executor.run(graph, output_dir=tmp_path / "out", device="cpu")
    assert report.status == "ok" and len(saved_files(report)) == 1


def test_image_not_beside_the_file_is_reported(registry):
    result = _open("img2img_ui04.json", registry)
    assert result.workflow.graph.node(10).params["image"] == "source.png"
    [warning] = result.report.warnings
    assert "node 10" in warning and "'source.png'" in warning


# --- export --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "txt2img_ui04.json",
        "txt2img_ui1.json",
        "hires_two_pass_ui1.json",
        "split_sampling_api.json",
        "img2img_ui04.json",
        "inpaint_ui04.json",
    ],
)
def test_latentloom_to_api_and_back_keeps_the_graph(name, registry):
    graph = _open(name, registry).workflow.graph
    exported = to_comfy_api(graph)
    json.dumps(exported)  # plain JSON
    back, report = import_api(json.loads(json.dumps(exported)), registry)
    assert report.unknown == () and report.warnings == ()
    assert _meaning(back.graph) == _meaning(graph)
    assert {n.id: n.title for n in back.graph} == {n.id: n.title for n in graph}


def test_export_matches_comfyui_api_fixture(registry):
    original = json.loads((FIXTURES / "split_sampling_api.json").read_text())
    exported = to_comfy_api(_open("split_sampling_api.json", registry).workflow.graph)
    assert {k: v["class_type"] for k, v in exported.items()} == {
        k: v["class_type"] for k, v in original.items()
    }
    assert {k: v["inputs"] for k, v in exported.items()} == {
        k: v["inputs"] for k, v in original.items()
    }


def test_export_resolves_reroutes_bypasses_and_leaves_muted_nodes_out(registry):
    graph = _open("lora_groups_reroutes_ui04.json", registry).workflow.graph
    exported = to_comfy_api(graph)
    assert set(exported) == {"3", "4", "5", "6", "7", "8", "9", "10", "14"}
    assert exported["3"]["inputs"]["model"] == ["10", 0]  # through reroute 20
    assert exported["8"]["inputs"] == {"samples": ["3", 0], "vae": ["4", 2]}  # 15 bypassed
    assert exported["4"] == {
        "inputs": {"ckpt_name": f"sd15/{CKPT}"},
        "class_type": "CheckpointLoaderSimple",
        "_meta": {"title": "Load Checkpoint"},
    }
    assert exported["10"]["inputs"] == {
        "lora_name": "style.safetensors",
        "strength_model": 0.8,
        "strength_clip": 0.6,
        "model": ["4", 0],
        "clip": ["4", 1],
    }


def test_latentloom_only_params_survive_the_round_trip(registry):
    graph = Graph(registry)
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": CKPT, "dtype": "float32"}).id
    grow = graph.add_node("GrowMask", params={"expand": 3, "feather": 1.5}).id
    solid = graph.add_node("SolidMask", params={"value": 0.5, "width": 32, "height": 32}).id
    graph.connect(solid, "MASK", grow, "mask")
    exported = to_comfy_api(graph)
    assert exported[str(load)]["inputs"] == {"ckpt_name": CKPT}
    assert exported[str(grow)]["inputs"] == {
        "expand": 3,
        "tapered_corners": True,
        "mask": [str(solid), 0],
    }
    back, _ = import_api(exported, registry)
    assert _meaning(back.graph) == _meaning(graph)


def test_export_lists_every_node_type_without_a_comfyui_equivalent(registry):
    graph = Graph(registry)
    graph.add_node("GradientImage")
    graph.add_node("LatentNoise")
    graph.add_node("LatentNoise")
    graph.add_node("EmptyLatentImage")
    with pytest.raises(ComfyExportError) as info:
        to_comfy_api(graph)
    assert info.value.unmapped == {"GradientImage": [1], "LatentNoise": [2, 3]}
    assert "GradientImage (node 1)" in str(info.value)
    assert "LatentNoise (nodes 2, 3)" in str(info.value)


def test_export_refuses_outputs_comfyui_nodes_lack(registry):
    graph = _open("txt2img_ui04.json", registry).workflow.graph
    if graph.spec(3).output("HISTORY") is None:
        pytest.skip("this KSampler has no HISTORY output")
    graph.add_node("Reroute", 50)
    graph.connect(3, "HISTORY", 50, "value")
    with pytest.raises(ComfyExportError) as info:
        to_comfy_api(graph)
    assert info.value.outputs == ("output HISTORY of KSampler (node 3)",)
