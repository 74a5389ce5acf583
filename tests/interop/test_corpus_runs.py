"""Real corpus workflows run end to end: LoRA, embeddings, SDXL base + refiner, area
composition, hires fix, inpainting, model merging, upscale models, unCLIP and custom sampling,
each one file of ``tests/interop/corpus`` opened with ``nodes.interop.open_workflow`` and run by the
executor.

Each file gets a model root of its own holding tiny random models (``tests.helpers``) under the
exact names its loaders ask for — checkpoints of the family the name or the manifest says
(SD 1.x, SD 2.x with v-prediction for 768 models, inpainting models, SDXL base and refiner),
VAEs, LoRAs, embeddings, ESRGAN upscale models of the scale their name says — and the pictures
its Load Image nodes name, in an ``input`` folder beside a copy of the file, where the importer
looks for them. The tiny VAEs downsample by 8,
as SD's do, so a workflow's pixel sizes keep their meaning.

To keep the runs fast, only sizes and step counts are overridden (``shrink_work``): pixel
sizes and positions are scaled so that the largest Empty Latent Image is 64 pixels on its
longest side (rounded to multiples of 8), batch sizes become 1, and step counts above 3 become 3
with start/end steps moved in proportion. The graph's nodes, links and every other value stay
as the file has them.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from core.diffusion.embedding_names import embedding_references
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor, RunReport
from core.graph.model import Graph
from nodes import build_registry
from nodes.interop import open_workflow
from tests.helpers.image_prompts import (
    make_tiny_unclip,
    tiny_clip_vision,
    write_clip_vision_file,
    write_unclip_checkpoint,
)
from tests.helpers.tiny_models import write_single_file
from tests.helpers.upscale_models import write_upscale_model_file
from tests.helpers.workflow_files import (
    CheckpointKind,
    checkpoint_kind,
    shrink_work,
    tiny_f8_pipeline,
    write_embedding_file,
    write_lora_file,
    write_picture,
    write_vae_file,
)
from tools.corpus_report import CORPUS, load_manifest

#: Pixel side of the pictures written for Load Image nodes.
PICTURE_SIDE = 64
IMAGE_LOADERS = ("LoadImage", "LoadImageMask")


@dataclass(frozen=True)
class Case:
    """One corpus file and what its run must give."""

    file: str
    #: Each output node's picture size (width, height) after the overrides.
    outputs: dict[int, tuple[int, int]]
    #: Node types the file needs that LatentLoom may not have yet: while the importer leaves
    #: any of them a placeholder, the case is skipped naming them.
    pending_types: tuple[str, ...] = ()


#: One file per kind of workflow, then a few more that reach other paths (img2img, an inpainting
#: model fed a mask picture and the first pass's picture, a hires fix in pixel space).
CASES = {
    "lora": Case("comfyui_examples/lora__lora_multiple.png", {9: (64, 64)}),
    "embeddings": Case("cubiq_workflows/text2img__embeddings.json", {9: (64, 64)}),
    "sdxl-refiner": Case("comfyui_examples/sdxl__sdxl_simple_example.png", {19: (64, 64)}),
    # 1280×704 → 64×32, its second pass upscaled to 1920×1088 → 96×56.
    "area-composition": Case(
        "comfyui_examples/area_composition__square_area_for_subject.png",
        {9: (64, 32), 32: (96, 56)},
    ),
    # An SD 2.x 768 (v-prediction) model, 768 → 64 upscaled to 1152 → 96.
    "hires-fix": Case(
        "comfyui_examples/2_pass_txt2img__hiresfix_latent_workflow.png",
        {9: (64, 64), 12: (96, 96)},
    ),
    "inpaint": Case("comfyui_examples/inpaint__inpaint_example.png", {9: (64, 64)}),
    "model-merge": Case(
        "comfyui_examples/model_merging__model_merging_3_checkpoints.png", {9: (64, 64)}
    ),
    "img2img": Case("comfyui_examples/img2img__img2img_workflow.png", {9: (64, 64)}),
    # 768×512 → 64×40 for all three passes.
    "inpaint-second-pass": Case(
        "cubiq_workflows/in-out_painting__inpaint.json",
        {15: (64, 40), 94: (64, 40), 119: (64, 40)},
    ),
    "hires-fix-pixel-space": Case(
        "cubiq_workflows/upscale__upscale_pixel.json", {13: (64, 64), 9: (128, 128)}
    ),
    # ESRGAN ×2 on the first pass's 512 → 64 picture.
    "upscale-model": Case("comfyui_examples/upscale_models__esrgan_example.png", {9: (128, 128)}),
    # 768 → 64, upscaled ×4 by RealESRGAN_x4plus, then resized to 1536 → 128 for a second pass.
    "hires-fix-upscale-model": Case(
        "comfyui_examples/2_pass_txt2img__hiresfix_esrgan_workflow.png",
        {9: (64, 64), 12: (128, 128)},
    ),
    # SDXL Turbo: SamplerCustom with SDTurboScheduler and KSamplerSelect.
    # SD 2.1 unCLIP: a picture's variations, one and two pictures mixed.
    "unclip": Case("comfyui_examples/unclip__unclip_example.png", {9: (64, 64)}),
    "unclip-multiple": Case("comfyui_examples/unclip__unclip_example_multiple.png", {9: (64, 64)}),
    "custom-sampling": Case("comfyui_examples/sdturbo__sdxlturbo_example.png", {25: (64, 64)}),
}
FAMILY_TAGS = {entry.file: entry.tags for entry in load_manifest()}


def family_tag(file: str) -> str:
    return next((tag for tag in FAMILY_TAGS[file] if tag in ("sd1", "sd2", "sdxl")), "sd1")


def _checkpoint_above(graph: Graph, node_id: int) -> str | None:
    """The name of the checkpoint a node's models come from (the nearest upstream loader)."""
    queue, seen = [node_id], {node_id}
    while queue:
        current = queue.pop(0)
        name = graph.node(current).params.get("ckpt_name")
        if name:
            return name
        for link in graph.inputs_of(current):
            if link.src not in seen:
                seen.add(link.src)
                queue.append(link.src)
    return None


def write_models(graph: Graph, file: str, root: Path, pipelines) -> None:
    """Every model file ``graph`` names, under ``root``, as tiny models of the right kind."""
    tag = family_tag(file)
    names = sorted({n.params["ckpt_name"] for n in graph if n.params.get("ckpt_name")})
    kinds = {name: checkpoint_kind(name, tag) for name in names}
    # Distinct checkpoints get distinct weights, so a merge of two of them merges something.
    for seed, name in enumerate(names):
        write_single_file(pipelines(kinds[name], seed), root / "checkpoints" / name)
    main = next((k for k in kinds.values() if not k.refiner), checkpoint_kind("", tag))

    def pipeline_for(node_id: int):
        name = _checkpoint_above(graph, node_id)
        return pipelines(kinds[name], names.index(name)) if name else pipelines(main)

    for number, node in enumerate(graph):
        if node.params.get("vae_name"):
            write_vae_file(pipelines(main), root / "vae" / node.params["vae_name"])
        if node.type_id == "unCLIPCheckpointLoader" and node.params.get("ckpt_name"):
            unclip = make_tiny_unclip(seed=number)
            f8 = tiny_f8_pipeline(CheckpointKind(ModelFamily.SD2), seed=number)
            unclip = dataclasses.replace(
                unclip, pipeline=dataclasses.replace(unclip.pipeline, vae=f8.vae)
            )
            write_unclip_checkpoint(unclip, root / "checkpoints" / node.params["ckpt_name"])
        if node.type_id == "CLIPVisionLoader" and node.params.get("clip_name"):
            path = root / "clip_vision" / node.params["clip_name"]
            write_clip_vision_file(tiny_clip_vision(seed=number), path)
        if node.type_id == "UpscaleModelLoader" and node.params.get("model_name"):
            path = root / "upscale_models" / node.params["model_name"]
            write_upscale_model_file(path, seed=number)
        if node.params.get("lora_name"):
            path = root / "loras" / node.params["lora_name"]
            write_lora_file(pipeline_for(node.id), path, seed=number)
        for text in (v for v in node.params.values() if isinstance(v, str)):
            for name in embedding_references(text):
                path = root / "embeddings" / name
                if path.suffix != ".safetensors":
                    path = path.with_name(path.name + ".safetensors")
                write_embedding_file(pipeline_for(node.id), path, seed=number)


def write_pictures(graph: Graph, folder: Path, size: tuple[int, int]) -> None:
    """The pictures the image loaders name, in ``folder`` (ComfyUI's input folder), with a
    transparent area where the loader's mask is used."""
    for node in graph:
        if node.type_id in IMAGE_LOADERS and node.params.get("image"):
            alpha = bool(graph.links_from(node.id, "MASK")) or node.type_id == "LoadImageMask"
            write_picture(folder / node.params["image"], size, alpha)


def picture_size(graph: Graph) -> tuple[int, int]:
    """The size of the (shrunk) graph's largest Empty Latent Image, else 64×64: a mask picture
    must fit the picture the workflow generates."""
    sizes = [
        (n.params["width"], n.params["height"])
        for n in graph
        if n.type_id == "EmptyLatentImage" and "width" in n.params and "height" in n.params
    ]
    return max(sizes, key=lambda size: size[0] * size[1], default=(PICTURE_SIDE, PICTURE_SIDE))


@dataclass
class Prepared:
    graph: Graph
    registry: object
    output_dir: Path


def prepare(case: Case, tmp_path: Path, pipelines) -> Prepared:
    """Copy the file into ``tmp_path``, write its models and pictures, open it again (so the
    importer finds the pictures beside it) and shrink its work."""
    root = tmp_path / "models"
    root.mkdir()
    registry = build_registry(ModelPaths.of(root))
    copy = tmp_path / "workflow" / Path(case.file).name
    copy.parent.mkdir()
    shutil.copyfile(CORPUS / case.file, copy)
    first = open_workflow(copy, registry)
    unknown = sorted({node.type_id for node in first.report.unknown})
    if unknown:
        assert set(unknown) <= set(case.pending_types), f"unknown node types {unknown}"
        pytest.skip(f"node types not in the registry yet: {', '.join(unknown)}")
    write_models(first.workflow.graph, case.file, root, pipelines)
    shrink_work(first.workflow.graph)
    write_pictures(first.workflow.graph, copy.parent / "input", picture_size(first.workflow.graph))
    opened = open_workflow(copy, registry)
    assert opened.report.warnings == ()
    graph = opened.workflow.graph
    shrink_work(graph)
    return Prepared(graph, registry, tmp_path / "output")


def pictures_of(report: RunReport) -> dict[int, torch.Tensor]:
    """Each output node's pictures ([batch, height, width, 3])."""
    return {
        node_id: record.value
        for node_id, entry in report.entries.items()
        for record in entry.records
        if record.kind == "images"
    }


def run(prepared: Prepared) -> dict[int, torch.Tensor]:
    """Runs the graph on a fresh executor (nothing cached) and returns its pictures."""
    report = Executor(prepared.registry).run(
        prepared.graph, output_dir=prepared.output_dir, device="cpu"
    )
    failed = {e.label: e.message for e in report.entries.values() if e.status == "failed"}
    assert report.status == "ok", failed
    return pictures_of(report)


@pytest.mark.parametrize("name", list(CASES))
def test_corpus_workflow_runs_on_tiny_models(name, tmp_path, pipelines):
    case = CASES[name]
    pictures = run(prepare(case, tmp_path, pipelines))
    assert set(pictures) == set(case.outputs)
    for node_id, (width, height) in case.outputs.items():
        picture = pictures[node_id]
        assert tuple(picture.shape) == (1, height, width, 3), node_id
        assert torch.isfinite(picture).all(), node_id


def test_the_same_seeds_give_the_same_pixels_and_other_seeds_others(tmp_path, pipelines):
    """Area composition with two passes of an SDE sampler (dpmpp_sde, which draws noise at
    every step): a second run from scratch repeats every pixel; new seeds change them."""
    prepared = prepare(CASES["area-composition"], tmp_path, pipelines)
    first, again = run(prepared), run(prepared)
    assert set(first) == set(again) == {9, 32}
    for node_id in first:
        assert torch.equal(first[node_id], again[node_id]), node_id
    samplers = [node for node in prepared.graph if "seed" in node.params]
    assert len(samplers) == 2
    for node in samplers:
        prepared.graph.set_param(node.id, "seed", node.params["seed"] + 1)
    reseeded = run(prepared)
    for node_id in first:
        assert not torch.equal(first[node_id], reseeded[node_id]), node_id


def test_only_sizes_and_step_counts_are_overridden(tmp_path, pipelines):
    """The SDXL example keeps its steps (25) and the base/refiner split (20) in primitive nodes:
    those become 3 and 2, the latent 1024 → 64; nothing else in the graph changes."""
    prepared = prepare(CASES["sdxl-refiner"], tmp_path, pipelines)
    shrunk = prepared.graph
    original = open_workflow(CORPUS / CASES["sdxl-refiner"].file, prepared.registry).workflow.graph
    assert shrunk.links == original.links
    changed = {
        (node.id, name): (original.node(node.id).params[name], value)
        for node in shrunk
        for name, value in node.params.items()
        if original.node(node.id).params[name] != value
    }
    assert changed == {
        (5, "width"): (1024, 64),
        (5, "height"): (1024, 64),
        (45, "value"): (25, 3),  # steps of both samplers
        (47, "value"): (20, 2),  # where the base stops and the refiner starts
    }
