"""GLIGEN: a tiny random GLIGEN model written in the original layout
(``<LDM transformer block>.fuser.*``, ``position_net.*``) for a tiny SD 1.x UNet; boxes placed
by GLIGENTextBoxApply change the sampler's prediction exactly as diffusers' own gated UNet
(``attention_type="gated"``) computes it, and only for the rows of the prompt with boxes."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from safetensors.torch import save_file

from core.diffusion.conditioning import Conditioning, with_extra
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.gligen import KWARG, GligenBoxes, GroundingBox, load_gligen
from core.diffusion.guidance import GuidedDenoiser
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import _randomise, make_tiny_pipeline, write_single_file
from tests.sampling.harness import model_of, random_conditioning

LATENT = (1, 4, 8, 8)


def gated_unet(unet: UNet2DConditionModel, seed: int = 7) -> UNet2DConditionModel:
    """diffusers' own GLIGEN UNet: ``unet``'s weights plus random gated layers and
    position net."""
    # Private keys left out: "_use_default_values" would make from_config drop the override.
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    gated = UNet2DConditionModel.from_config({**config, "attention_type": "gated"})
    _randomise(gated, torch.Generator().manual_seed(seed))
    gated.load_state_dict(unet.state_dict(), strict=False)
    return gated.eval()


def gligen_tensors(gated: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """The gated layers and position net of ``gated`` in the layout of GLIGEN files."""
    tensors = {}
    for name, module in gated.named_modules():
        if isinstance(module, BasicTransformerBlock):
            ldm = unet_module_to_ldm(name, gated.config)
            for key, value in module.fuser.state_dict().items():
                tensors[f"{ldm}.fuser.{key}"] = value.contiguous()
    for key, value in gated.position_net.state_dict().items():
        tensors[f"position_net.{key}"] = value.contiguous()
    return tensors


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pipeline = make_tiny_pipeline(ModelFamily.SD1, seed=6)
    gated = gated_unet(pipeline.unet)
    root = tmp_path_factory.mktemp("gligen")
    (root / "gligen").mkdir()
    save_file(gligen_tensors(gated), root / "gligen" / "gligen_sd14_textbox_pruned.safetensors")
    write_single_file(pipeline, root / "checkpoints" / "v1-5.safetensors")
    return pipeline, gated, root


def test_boxes_steer_the_unet_as_diffusers_gated_unet_does(setup):
    pipeline, gated, root = setup
    gligen = load_gligen(root / "gligen" / "gligen_sd14_textbox_pruned.safetensors")
    blocks = [m for m in gated.modules() if isinstance(m, BasicTransformerBlock)]
    assert len(gligen.layers) == len(blocks)
    phrase = torch.randn(32, generator=torch.Generator().manual_seed(2))
    # 64×64 pixels over an 8×8 latent: 8 pixels a cell; the box is cells 2–6 by 1–4.
    boxes = GligenBoxes(gligen, (GroundingBox(phrase, x=16, y=8, width=32, height=24),))
    model = model_of(pipeline)
    positive = random_conditioning(pipeline, 1)
    grounded = Conditioning((with_extra(positive[0], KWARG, boxes),))
    negative = random_conditioning(pipeline, 2)
    x = torch.randn(LATENT, generator=torch.Generator().manual_seed(3))
    timestep = torch.tensor(500.0)
    denoiser = GuidedDenoiser(model, grounded, negative, 3.0, x.shape, None)
    assert denoiser.unet is not model.unet
    plain = GuidedDenoiser(model, positive, negative, 3.0, x.shape, None)
    with torch.no_grad():
        ours = denoiser(x, timestep)
        reference_positive = gated(
            x,
            timestep,
            positive[0].embeds,
            cross_attention_kwargs={
                "gligen": {
                    "boxes": torch.tensor([[[2 / 8, 1 / 8, 6 / 8, 4 / 8]] + [[0.0] * 4] * 29]),
                    "masks": torch.tensor([[1.0] + [0.0] * 29]),
                    "positive_embeddings": torch.cat(
                        [phrase[None, None], torch.zeros(1, 29, 32)], dim=1
                    ),
                }
            },
        ).sample
        reference_negative = pipeline.unet(x, timestep, negative[0].embeds).sample
        expected = reference_negative + 3.0 * (reference_positive - reference_negative)
        torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(ours, plain(x, timestep), atol=1e-4)


def test_a_unet_in_another_precision_gets_its_own_copy_of_the_layers(setup):
    pipeline, _, root = setup
    gligen = load_gligen(root / "gligen" / "gligen_sd14_textbox_pruned.safetensors")
    boxes = GligenBoxes(gligen, (GroundingBox(torch.zeros(32), 0, 0, 16, 16),))
    unet = copy.deepcopy(pipeline.unet).to(torch.bfloat16)
    patched = boxes.patch_unet(unet)
    fusers = [m.fuser for m in patched.modules() if isinstance(m, BasicTransformerBlock)]
    assert {next(f.parameters()).dtype for f in fusers} == {torch.bfloat16}
    # The loaded GLIGEN model, shared by every run, keeps its own precision.
    assert {p.dtype for p in gligen.layers.parameters()} == {torch.float32}


def test_a_file_without_gated_layers_is_refused(tmp_path):
    save_file({"input_blocks.1.1.proj_in.weight": torch.zeros(2, 2)}, tmp_path / "x.safetensors")
    with pytest.raises(ModelLoadError, match="not a GLIGEN model"):
        load_gligen(tmp_path / "x.safetensors")


def test_the_nodes_chain_boxes_and_the_sampler_runs(setup):
    _, _, root = setup
    registry = build_registry(ModelPaths.of(root))
    g = Graph(registry)
    ckpt = g.add_node("LoadCheckpoint", params={"ckpt_name": "v1-5.safetensors"}).id
    loader = g.add_node(
        "GLIGENLoader", params={"gligen_name": "gligen_sd14_textbox_pruned.safetensors"}
    ).id
    prompt = g.add_node("CLIPTextEncode", params={"text": "a bottle and the sun"}).id
    negative = g.add_node("CLIPTextEncode", params={"text": ""}).id
    boxes = []
    for text, x in (("sun", 0), ("bottle", 32)):
        box = g.add_node(
            "GLIGENTextBoxApply",
            params={"text": text, "width": 32, "height": 32, "x": x, "y": 16},
        ).id
        g.connect(ckpt, "CLIP", box, "clip")
        g.connect(loader, "GLIGEN", box, "gligen_textbox_model")
        boxes.append(box)
    g.connect(prompt, "CONDITIONING", boxes[0], "conditioning_to")
    g.connect(boxes[0], "CONDITIONING", boxes[1], "conditioning_to")
    latent = g.add_node("EmptyLatentImage", params={"width": 64, "height": 64}).id
    sampler = g.add_node("KSampler", params={"steps": 2}).id
    for source, out, target, inp in (
        (ckpt, "CLIP", prompt, "clip"),
        (ckpt, "CLIP", negative, "clip"),
        (ckpt, "MODEL", sampler, "model"),
        (boxes[1], "CONDITIONING", sampler, "positive"),
        (negative, "CONDITIONING", sampler, "negative"),
        (latent, "LATENT", sampler, "latent_image"),
    ):
        g.connect(source, out, target, inp)
    report = Executor(registry).run(g, outputs=[boxes[1], sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    (conditioning,) = report.outputs[boxes[1]]
    extra = conditioning[0].extras[KWARG]
    assert [(b.x, b.y, b.width) for b in extra.boxes] == [(0, 16, 32), (32, 16, 32)]
    assert all(b.phrase.shape == (32,) for b in extra.boxes)
    assert not torch.equal(extra.boxes[0].phrase, extra.boxes[1].phrase)
    assert torch.isfinite(report.outputs[sampler][0]["samples"]).all()


def test_more_than_thirty_boxes_are_refused(setup):
    _, _, root = setup
    gligen = load_gligen(root / "gligen" / "gligen_sd14_textbox_pruned.safetensors")
    box = GroundingBox(torch.zeros(32), 0, 0, 8, 8)
    boxes = GligenBoxes(gligen, (box,) * 30)
    with pytest.raises(ValueError, match="at most 30"):
        boxes.with_box(box)
