"""ComfyUI's ControlNet workflows from the corpus import and run end to end on tiny models
written under the names they ask for: Canny edges into Apply ControlNet, a T2I-Adapter, a
difference ControlNet and two ControlNets mixed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from nodes import build_registry
from nodes.interop import open_workflow
from tests.helpers.controlnets import write_control_files
from tests.helpers.workflow_files import checkpoint_kind, shrink_work
from tests.interop.test_corpus_runs import (
    family_tag,
    picture_size,
    pictures_of,
    write_models,
    write_pictures,
)
from tools.corpus_report import CORPUS

CONTROL_LOADERS = {
    "ControlNetLoader": "control_net_name",
    "DiffControlNetLoader": "control_net_name",
    "T2IAdapterLoader": "t2i_adapter_name",
}
FILES = {
    "canny": "cubiq_workflows/guided_composition__canny.json",
    "t2i-adapter": "comfyui_examples/controlnet__depth_t2i_adapter.png",
    "diff-controlnet": "comfyui_examples/controlnet__depth_controlnet.png",
    "mixing": "comfyui_examples/controlnet__mixing_controlnets.png",
}


@pytest.mark.parametrize("name", list(FILES))
def test_controlnet_workflow_imports_and_runs(name, tmp_path, pipelines):
    file = FILES[name]
    root = tmp_path / "models"
    root.mkdir()
    registry = build_registry(ModelPaths.of(root))
    copy = tmp_path / "workflow" / Path(file).name
    copy.parent.mkdir()
    shutil.copyfile(CORPUS / file, copy)
    first = open_workflow(copy, registry)
    assert not first.report.unknown, [n.type_id for n in first.report.unknown]
    graph = first.workflow.graph
    write_models(graph, file, root, pipelines)
    controls = [
        node.params[field]
        for node in graph
        if (field := CONTROL_LOADERS.get(node.type_id)) and node.params.get(field)
    ]
    assert controls
    # The ControlNets fit the checkpoint written first (seed 0), the one the file names.
    first_name = sorted({n.params["ckpt_name"] for n in graph if n.params.get("ckpt_name")})[0]
    unet = pipelines(checkpoint_kind(first_name, family_tag(file)), 0).unet
    write_control_files(controls, root / "controlnet", unet)
    shrink_work(graph)
    write_pictures(graph, copy.parent / "input", picture_size(graph))
    opened = open_workflow(copy, registry)
    assert opened.report.warnings == ()
    graph = opened.workflow.graph
    shrink_work(graph)
    report = Executor(registry).run(graph, output_dir=tmp_path / "output", device="cpu")
    failed = {e.label: e.message for e in report.entries.values() if e.status == "failed"}
    assert report.status == "ok", failed
    applied = [n.id for n in graph if n.type_id.startswith("ControlNetApply")]
    assert applied and all(report.entries[a].status in ("ran", "cached") for a in applied)
    pictures = pictures_of(report)
    assert pictures
    assert all(torch.isfinite(p).all() for p in pictures.values())
