"""Corpus workflows that use the newer core nodes run end to end on tiny models: an LCM LoRA
with LCM model sampling, a CosXL conversion (per-block SDXL merge, continuous EDM sampling),
a hypernetwork, a T2I-Adapter style model and GLIGEN boxes. Models are written under the names
the files ask for, as in ``test_corpus_runs``, plus the style model, hypernetwork and GLIGEN
files those loaders name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.graph.model import Graph
from tests.helpers.workflow_files import checkpoint_kind
from tests.interop.test_corpus_runs import Case, family_tag, prepare, run
from tests.nodes.test_gligen_nodes import gated_unet, gligen_tensors
from tests.nodes.test_hypernetwork_nodes import hypernetwork_file
from tests.nodes.test_style_model_nodes import style_tensors

CASES = {
    # An SDXL LCM LoRA, ModelSamplingDiscrete lcm, the lcm sampler on sgm_uniform.
    "lcm": Case("comfyui_examples/lcm__lcm_basic_example.png", {9: (64, 64)}),
    # (CosXL − SDXL) + another SDXL per block, saved, then sampled as a continuous v model.
    "cosxl": Case("comfyui_examples/model_merging__model_merging_cosxl.png", {9: (64, 64)}),
    "hypernetwork": Case("comfyui_examples/hypernetworks__hypernetwork_example.png", {9: (64, 64)}),
    "style-model": Case(
        "cubiq_workflows/image_conditioning__conditioning_style.json", {9: (64, 64)}
    ),
    "gligen": Case("comfyui_examples/gligen__gligen_textbox_example.png", {9: (64, 64)}),
}


def write_add_ons(graph: Graph, file: str, root: Path, pipelines) -> None:
    """The style model, hypernetwork and GLIGEN files ``graph`` names, made for the tiny
    checkpoint the file's family gives."""
    main = pipelines(checkpoint_kind("", family_tag(file)))
    for node in graph:
        if node.type_id == "StyleModelLoader":
            path = root / "style_models" / node.params["style_model_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(style_tensors(), path)
        if node.type_id == "HypernetworkLoader":
            widths = {
                int(m.to_k.in_features)
                for n, m in main.unet.named_modules()
                if n.endswith("attn1") or n.endswith("attn2")
            }
            hypernetwork_file(
                root / "hypernetworks" / node.params["hypernetwork_name"],
                widths=tuple(sorted(widths)),
            )
        if node.type_id == "GLIGENLoader":
            path = root / "gligen" / node.params["gligen_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(gligen_tensors(gated_unet(main.unet)), path)


@pytest.mark.parametrize("name", list(CASES))
def test_corpus_workflow_with_newer_core_nodes_runs(name, tmp_path, pipelines):
    case = CASES[name]
    prepared = prepare(case, tmp_path, pipelines)
    write_add_ons(prepared.graph, case.file, tmp_path / "models", pipelines)
    pictures = run(prepared)
    assert set(pictures) == set(case.outputs)
    for node_id, (width, height) in case.outputs.items():
        assert tuple(pictures[node_id].shape) == (1, height, width, 3), node_id
        assert torch.isfinite(pictures[node_id]).all(), node_id
