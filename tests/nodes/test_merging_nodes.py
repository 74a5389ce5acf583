"""The merge nodes and Save Checkpoint through the engine: a merged model saved into the
output folder loads back through Load Checkpoint with the same tensors; bad inputs fail on
the input at fault."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.engine import Executor, ValidationError
from core.graph.model import Graph
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A models root that is also the output folder, so saved checkpoints are loadable."""
    root = tmp_path_factory.mktemp("models")
    for name, family, seed in (("a", ModelFamily.SD1, 0), ("b", ModelFamily.SD1, 1)):
        pipeline = make_tiny_pipeline(family, seed=seed)
        write_single_file(pipeline, root / "checkpoints" / f"{name}.safetensors")
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD2, seed=2), root / "checkpoints" / "sd2.safetensors"
    )
    return root


def load(g, name):
    return g.add_node("LoadCheckpoint", params={"ckpt_name": name, "dtype": "float32"}).id


def merge_graph(registry, ratio=0.3, clip_ratio=0.6, second="b.safetensors"):
    g = Graph(registry)
    a, b = load(g, "a.safetensors"), load(g, second)
    model = g.add_node("ModelMergeSimple", params={"ratio": ratio}).id
    clip = g.add_node("CLIPMergeSimple", params={"ratio": clip_ratio}).id
    g.connect(a, "MODEL", model, "model1")
    g.connect(b, "MODEL", model, "model2")
    g.connect(a, "CLIP", clip, "clip1")
    g.connect(b, "CLIP", clip, "clip2")
    return g, a, b, model, clip


def test_merged_model_saved_as_a_checkpoint_loads_back_the_same(registry, executor, root):
    g, a, b, model, clip = merge_graph(registry)
    save = g.add_node("CheckpointSave", params={"filename_prefix": "checkpoints/merged"}).id
    g.connect(model, "MODEL", save, "model")
    g.connect(clip, "CLIP", save, "clip")
    g.connect(a, "VAE", save, "vae")
    report = executor.run(g, outputs=[a, b, model, clip, save], device="cpu", output_dir=root)
    assert report.status == "ok", {n: e.message for n, e in report.entries.items()}
    [record] = [r for r in report.entries[save].records if r.kind == "file"]
    assert record.value == str(root / "checkpoints" / "merged_00001.safetensors")

    (merged,), (merged_clip,) = report.outputs[model], report.outputs[clip]
    base_a, base_b = report.outputs[a][0].unet, report.outputs[b][0].unet
    torch.testing.assert_close(
        merged.unet.conv_in.weight, 0.3 * base_a.conv_in.weight + 0.7 * base_b.conv_in.weight
    )

    g2 = Graph(registry)
    again = load(g2, "merged_00001.safetensors")
    reloaded, reloaded_clip, reloaded_vae = executor.run(g2, outputs=[again], device="cpu").outputs[
        again
    ]
    pairs = [
        (merged.unet, reloaded.unet),
        (merged_clip.encoders[0].model, reloaded_clip.encoders[0].model),
        (report.outputs[a][2].vae, reloaded_vae.vae),
    ]
    for saved, loaded in pairs:
        theirs = loaded.state_dict()
        for name, tensor in saved.state_dict().items():
            assert torch.equal(tensor, theirs[name]), name

    again_report = executor.run(g, outputs=[save], device="cpu", output_dir=root)
    assert again_report.status_of(save) == "cached"  # the same inputs: no second file
    g.set_param(model, "ratio", 0.5)  # a new key: the merge and the save run again
    third = executor.run(g, outputs=[save], device="cpu", output_dir=root)
    assert third.status_of(model) == "ran" and third.status_of(a) == "cached"
    saved = sorted(p.name for p in (root / "checkpoints").glob("merged_*"))
    assert saved == ["merged_00001.safetensors", "merged_00002.safetensors"]


def test_add_and_subtract_nodes_follow_comfyui(registry, executor):
    g = Graph(registry)
    a, b = load(g, "a.safetensors"), load(g, "b.safetensors")
    sub = g.add_node("ModelMergeSubtract", params={"multiplier": 0.5}).id
    add = g.add_node("ModelMergeAdd").id
    blocks = g.add_node("ModelMergeBlocks", params={"input": 0.1, "middle": 0.2, "out": 0.8}).id
    for node in (sub, blocks):
        g.connect(a, "MODEL", node, "model1")
        g.connect(b, "MODEL", node, "model2")
    g.connect(a, "MODEL", add, "model1")
    g.connect(sub, "MODEL", add, "model2")
    out = executor.run(g, outputs=[a, b, add, blocks], device="cpu").outputs
    wa, wb = out[a][0].unet.conv_out.weight, out[b][0].unet.conv_out.weight
    torch.testing.assert_close(out[add][0].unet.conv_out.weight, wa + 0.5 * (wa - wb))
    torch.testing.assert_close(out[blocks][0].unet.conv_out.weight, 0.8 * wa + 0.2 * wb)


def test_models_of_different_families_fail_on_the_second_input(registry, executor):
    g, _, _, model, clip = merge_graph(registry, second="sd2.safetensors")
    report = executor.run(g, outputs=[model, clip], device="cpu")
    for node, field in ((model, "model2"), (clip, "clip2")):
        entry = report.entries[node]
        assert entry.status == "failed" and entry.field == field
        assert entry.message.startswith(f"cannot merge: {field[:-1]}1 is an sd1 ")
        assert f"and {field} an sd2 one" in entry.message and "\n" not in entry.message


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [("../escape", "leads outside the output folder"), ("", "the file name is empty")],
)
def test_a_prefix_leading_outside_is_refused_before_the_run(registry, root, prefix, reason):
    g = Graph(registry)
    a = load(g, "a.safetensors")
    save = g.add_node("CheckpointSave", params={"filename_prefix": prefix}).id
    for output, name in (("MODEL", "model"), ("CLIP", "clip"), ("VAE", "vae")):
        g.connect(a, output, save, name)
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(g, outputs=[save], output_dir=root / "out")
    [problem] = info.value.problems
    assert problem.node_id == save and problem.field == "filename_prefix"
    assert reason in problem.message
    assert not (root / "out").exists()


def test_a_clip_of_another_model_fails_on_the_clip(registry, executor, root):
    g = Graph(registry)
    a, other = load(g, "a.safetensors"), load(g, "sd2.safetensors")
    save = g.add_node("CheckpointSave", params={"filename_prefix": "x"}).id
    g.connect(a, "MODEL", save, "model")
    g.connect(other, "CLIP", save, "clip")
    g.connect(a, "VAE", save, "vae")
    entry = executor.run(g, outputs=[save], device="cpu", output_dir=root / "x").entries[save]
    assert entry.status == "failed" and entry.field == "clip"
    assert "the CLIP is an sd2 text encoder but the MODEL an sd1 UNet" in entry.message
    assert not (root / "x").exists()


def test_a_prefix_arriving_by_link_is_checked_when_saving(registry, executor, root):
    g = Graph(registry)
    a = load(g, "a.safetensors")
    name = g.add_node("String", params={"value": "../../escape"}).id
    save = g.add_node("CheckpointSave").id
    for output, socket in (("MODEL", "model"), ("CLIP", "clip"), ("VAE", "vae")):
        g.connect(a, output, save, socket)
    g.connect(name, "STRING", save, "filename_prefix")
    out = root / "linked"
    entry = executor.run(g, outputs=[save], device="cpu", output_dir=out).entries[save]
    assert entry.status == "failed" and entry.field == "filename_prefix"
    assert "leads outside the output folder" in entry.message
    assert not any(p.is_file() for p in root.parent.rglob("escape*"))


def test_a_comfyui_merge_workflow_imports_with_its_widget_values(registry):
    from nodes.interop.comfyui import import_ui

    def node(id_, type_, widgets, inputs=(), outputs=()):
        return {
            "id": id_,
            "type": type_,
            "pos": [0, 0],
            "widgets_values": widgets,
            "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [{"name": n, "type": n, "links": links} for n, links in outputs],
        }

    loader_outputs = [("MODEL", [1]), ("CLIP", [3]), ("VAE", [7])]
    data = {
        "last_node_id": 5,
        "last_link_id": 7,
        "nodes": [
            node(1, "CheckpointLoaderSimple", ["a.safetensors"], outputs=loader_outputs),
            node(
                2, "CheckpointLoaderSimple", ["b.safetensors"], [], [("MODEL", [2]), ("CLIP", [4])]
            ),
            node(
                3,
                "ModelMergeBlocks",
                [0.1, 0.2, 0.8],
                [("model1", "MODEL", 1), ("model2", "MODEL", 2)],
                [("MODEL", [5])],
            ),
            node(
                4,
                "CLIPMergeSimple",
                [0.4],
                [("clip1", "CLIP", 3), ("clip2", "CLIP", 4)],
                [("CLIP", [6])],
            ),
            node(
                5,
                "CheckpointSave",
                ["checkpoints/ComfyUI"],
                [("model", "MODEL", 5), ("clip", "CLIP", 6), ("vae", "VAE", 7)],
            ),
        ],
        "links": [
            [1, 1, 0, 3, 0, "MODEL"],
            [2, 2, 0, 3, 1, "MODEL"],
            [3, 1, 1, 4, 0, "CLIP"],
            [4, 2, 1, 4, 1, "CLIP"],
            [5, 3, 0, 5, 0, "MODEL"],
            [6, 4, 0, 5, 1, "CLIP"],
            [7, 1, 2, 5, 2, "VAE"],
        ],
        "version": 0.4,
    }
    workflow, report = import_ui(data, registry)
    graph = workflow.graph
    assert graph.node(3).params == {"input": 0.1, "middle": 0.2, "out": 0.8}
    assert graph.node(4).params == {"ratio": 0.4}
    assert graph.node(5).params == {"filename_prefix": "checkpoints/ComfyUI"}
    assert not report.unknown and not report.misfits
    assert len(graph.links) == 7
