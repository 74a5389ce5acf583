"""Load Style Model and Apply Style Model on a tiny random style adapter written in the
published key layout (``style_embedding``, ``ln_pre``, ``transformer_layes.N.*``, ``ln_post``,
``proj``), checked against the adapter's computation written out here by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.diffusion.clip_vision import encode_images, load_clip_vision
from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.diffusion.style_model import apply_style, load_style_model, style_tokens
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.image_prompts import tiny_clip_vision, write_clip_vision_file
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file

WIDTH, CONTEXT, TOKENS, LAYERS = 32, 32, 3, 2  # the tiny CLIP vision and SD 1.x text widths


def style_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random style adapter in the published layout (CLIP blocks with fused q/k/v)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.2

    tensors = {
        "style_embedding": rand(1, TOKENS, WIDTH),
        "ln_pre.weight": 1 + rand(WIDTH),
        "ln_pre.bias": rand(WIDTH),
        "ln_post.weight": 1 + rand(WIDTH),
        "ln_post.bias": rand(WIDTH),
        "proj": rand(WIDTH, CONTEXT),
    }
    for i in range(LAYERS):
        p = f"transformer_layes.{i}."
        tensors |= {
            p + "attn.in_proj_weight": rand(3 * WIDTH, WIDTH),
            p + "attn.in_proj_bias": rand(3 * WIDTH),
            p + "attn.out_proj.weight": rand(WIDTH, WIDTH),
            p + "attn.out_proj.bias": rand(WIDTH),
            p + "ln_1.weight": 1 + rand(WIDTH),
            p + "ln_1.bias": rand(WIDTH),
            p + "mlp.c_fc.weight": rand(4 * WIDTH, WIDTH),
            p + "mlp.c_fc.bias": rand(4 * WIDTH),
            p + "mlp.c_proj.weight": rand(WIDTH, 4 * WIDTH),
            p + "mlp.c_proj.bias": rand(WIDTH),
            p + "ln_2.weight": 1 + rand(WIDTH),
            p + "ln_2.bias": rand(WIDTH),
        }
    return tensors


def reference_tokens(tensors: dict[str, torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
    """The adapter by hand: 8 heads of scaled dot-product attention, QuickGELU MLP."""

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (WIDTH,), tensors[name + ".weight"], tensors[name + ".bias"])

    x = torch.cat([hidden, tensors["style_embedding"].expand(hidden.shape[0], -1, -1)], 1)
    x = norm(x, "ln_pre")
    heads = 8
    for i in range(LAYERS):
        p = f"transformer_layes.{i}."
        h = norm(x, p + "ln_1")
        qkv = h @ tensors[p + "attn.in_proj_weight"].T + tensors[p + "attn.in_proj_bias"]
        q, k, v = qkv.chunk(3, dim=-1)
        b, n, _ = q.shape
        q, k, v = (t.reshape(b, n, heads, -1).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-1, -2) / (WIDTH // heads) ** 0.5, dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(b, n, WIDTH)
        x = x + attended @ tensors[p + "attn.out_proj.weight"].T + tensors[p + "attn.out_proj.bias"]
        h = norm(x, p + "ln_2") @ tensors[p + "mlp.c_fc.weight"].T + tensors[p + "mlp.c_fc.bias"]
        h = h * torch.sigmoid(1.702 * h)
        x = x + h @ tensors[p + "mlp.c_proj.weight"].T + tensors[p + "mlp.c_proj.bias"]
    return norm(x[:, -TOKENS:], "ln_post") @ tensors["proj"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    models = tmp_path_factory.mktemp("style") / "models"
    (models / "style_models").mkdir(parents=True)
    save_file(style_tensors(), models / "style_models" / "coadapter-style-sd15v1.safetensors")
    torch.save(style_tensors(), models / "style_models" / "t2iadapter_style_sd14v1.pth")
    write_clip_vision_file(tiny_clip_vision(seed=4), models / "clip_vision" / "vit-l.safetensors")
    write_single_file(make_tiny_pipeline(ModelFamily.SD1), models / "checkpoints" / "sd15.ckpt")
    return models


def test_style_tokens_are_the_adapters_computation(root):
    hidden = torch.randn(2, 17, WIDTH, generator=torch.Generator().manual_seed(1))
    for name in ("coadapter-style-sd15v1.safetensors", "t2iadapter_style_sd14v1.pth"):
        model = load_style_model(root / "style_models" / name)
        tokens = style_tokens(model, hidden)
        # Both pictures' tokens in one sequence: several style pictures mix.
        assert tokens.shape == (1, 2 * TOKENS, CONTEXT)
        expected = reference_tokens(style_tensors(), hidden).reshape(1, -1, CONTEXT)
        torch.testing.assert_close(tokens, expected, atol=1e-4, rtol=1e-4)


def test_apply_style_appends_scaled_tokens_and_refuses_what_it_cannot_do():
    prompt = torch.randn(2, 77, CONTEXT)
    tokens = torch.randn(1, 4, CONTEXT)
    styled = apply_style(Conditioning((ConditioningEntry(prompt),)), tokens, 0.5)
    (entry,) = styled
    assert entry.embeds.shape == (2, 81, CONTEXT)
    assert torch.equal(entry.embeds[:, :77], prompt)
    assert torch.allclose(entry.embeds[:, 77:], 0.5 * tokens.expand(2, -1, -1))
    with pytest.raises(ValueError, match="multiply"):
        apply_style(Conditioning((ConditioningEntry(prompt),)), tokens, 0.5, "attn_bias")
    with pytest.raises(ValueError, match="768"):
        apply_style(Conditioning((ConditioningEntry(torch.randn(1, 77, 2048)),)), tokens)


def test_a_file_without_style_embedding_is_refused_by_name(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelLoadError, match="not a style model"):
        load_style_model(path)


def test_the_nodes_append_the_style_pictures_tokens_and_the_sampler_runs(root):
    registry = build_registry(ModelPaths.of(root))
    g = Graph(registry)
    ckpt = g.add_node("LoadCheckpoint", params={"ckpt_name": "sd15.ckpt"}).id
    prompt = g.add_node("CLIPTextEncode", params={"text": "a red cube"}).id
    negative = g.add_node("CLIPTextEncode", params={"text": ""}).id
    picture = g.add_node("GradientImage", params={"width": 32, "height": 32}).id
    vision = g.add_node("CLIPVisionLoader", params={"clip_name": "vit-l.safetensors"}).id
    encode = g.add_node("CLIPVisionEncode").id
    style = g.add_node(
        "StyleModelLoader", params={"style_model_name": "coadapter-style-sd15v1.safetensors"}
    ).id
    apply = g.add_node("StyleModelApply", params={"strength": 2.0}).id
    latent = g.add_node("EmptyLatentImage", params={"width": 64, "height": 64}).id
    sampler = g.add_node("KSampler", params={"steps": 2}).id
    for source, out, target, inp in (
        (ckpt, "CLIP", prompt, "clip"),
        (ckpt, "CLIP", negative, "clip"),
        (vision, "CLIP_VISION", encode, "clip_vision"),
        (picture, "IMAGE", encode, "image"),
        (prompt, "CONDITIONING", apply, "conditioning"),
        (style, "STYLE_MODEL", apply, "style_model"),
        (encode, "CLIP_VISION_OUTPUT", apply, "clip_vision_output"),
        (ckpt, "MODEL", sampler, "model"),
        (apply, "CONDITIONING", sampler, "positive"),
        (negative, "CONDITIONING", sampler, "negative"),
        (latent, "LATENT", sampler, "latent_image"),
    ):
        g.connect(source, out, target, inp)
    report = Executor(registry).run(g, outputs=[apply, prompt, picture, sampler], device="cpu")
    assert report.status == "ok", report.to_dict()
    (styled,) = report.outputs[apply]
    (plain,) = report.outputs[prompt]
    embeds = styled[0].embeds
    assert embeds.shape[1] == plain[0].embeds.shape[1] + TOKENS
    assert torch.equal(embeds[:, : plain[0].embeds.shape[1]], plain[0].embeds)
    encoder = load_clip_vision(root / "clip_vision" / "vit-l.safetensors")
    hidden = encode_images(encoder, report.outputs[picture][0]).last_hidden_state  # type: ignore[arg-type]
    expected = 2.0 * reference_tokens(style_tensors(), hidden)
    torch.testing.assert_close(embeds[:, -TOKENS:], expected, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(report.outputs[sampler][0]["samples"]).all()
