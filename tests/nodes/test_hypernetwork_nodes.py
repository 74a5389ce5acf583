"""HypernetworkLoader: AUTOMATIC1111 hypernetwork files (width → key and value networks, with
their settings) read without running code and applied to a tiny SD 1.x UNet's attention,
checked against the attention computed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.hypernetwork import apply_hypernetwork, load_hypernetwork
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file
from tests.sampling.harness import model_of

STRENGTH = 0.7


def _network(width: int, generator: torch.Generator, layer_norm: bool) -> dict[str, torch.Tensor]:
    """A [1, 2, 1] network in A1111's module numbering: Linear, ReLU, [LayerNorm,] Dropout,
    Linear[, LayerNorm] (a layer norm follows every linear layer when the file asks)."""
    hidden = 2 * width

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    tensors = {"linear.0.weight": rand(hidden, width), "linear.0.bias": rand(hidden, scale=0.1)}
    if layer_norm:
        tensors |= {"linear.2.weight": 1 + rand(hidden, scale=0.1), "linear.2.bias": rand(hidden)}
    last = 4 if layer_norm else 3
    tensors |= {f"linear.{last}.weight": rand(width, hidden), f"linear.{last}.bias": rand(width)}
    if layer_norm:
        tensors |= {"linear.5.weight": 1 + rand(width, scale=0.1), "linear.5.bias": rand(width)}
    return tensors


def hypernetwork_file(path, widths=(32,), layer_norm: bool = False) -> dict:
    generator = torch.Generator().manual_seed(3)
    content: dict = {
        width: [_network(width, generator, layer_norm), _network(width, generator, layer_norm)]
        for width in widths
    }
    content |= {
        "layer_structure": [1, 2, 1],
        "activation_func": "relu",
        "is_layer_norm": layer_norm,
        "weight_initialization": "Normal",
        "use_dropout": True,
        "activate_output": False,
        "last_layer_dropout": False,
        "name": "marble",
        "step": 10,
        "sd_checkpoint": "abcdef12",
        "sd_checkpoint_name": "v1-5-pruned-emaonly",
        "optional_info": None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return content


def _mlp(tensors: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    def linear(n: int, h: torch.Tensor) -> torch.Tensor:
        return h @ tensors[f"linear.{n}.weight"].T + tensors[f"linear.{n}.bias"]

    def norm(n: int, h: torch.Tensor) -> torch.Tensor:
        weight, bias = tensors[f"linear.{n}.weight"], tensors[f"linear.{n}.bias"]
        return F.layer_norm(h, h.shape[-1:], weight, bias)

    if "linear.5.weight" in tensors:
        return norm(5, linear(4, norm(2, F.relu(linear(0, x)))))
    return linear(3, F.relu(linear(0, x)))


def _attention_by_hand(attn, hidden, context, key_net, value_net):
    heads = attn.heads
    q = attn.to_q(hidden)
    k = attn.to_k(context + STRENGTH * _mlp(key_net, context))
    v = attn.to_v(context + STRENGTH * _mlp(value_net, context))
    b = hidden.shape[0]

    def split(t):
        return t.reshape(b, -1, heads, t.shape[-1] // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return attn.to_out[0](out.transpose(1, 2).reshape(b, -1, q.shape[-1]))


@pytest.fixture(scope="module")
def pipeline():
    return make_tiny_pipeline(ModelFamily.SD1, seed=4)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_attention_reads_the_changed_keys_and_values(pipeline, tmp_path, layer_norm):
    content = hypernetwork_file(tmp_path / "marble.pt", layer_norm=layer_norm)
    model = model_of(pipeline)
    patched = apply_hypernetwork(model, load_hypernetwork(tmp_path / "marble.pt"), STRENGTH)
    assert patched.unet is not model.unet
    name = "down_blocks.0.attentions.0.transformer_blocks.0"
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(1, 16, 32, generator=generator)
    prompt = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        for attention, context in (("attn2", prompt), ("attn1", None)):
            attn = patched.unet.get_submodule(f"{name}.{attention}")
            got = attn(hidden, encoder_hidden_states=context)
            used = hidden if context is None else context
            expected = _attention_by_hand(attn, hidden, used, *content[32])
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            # The loaded model is untouched.
            original = model.unet.get_submodule(f"{name}.{attention}")
            assert not torch.allclose(original(hidden, encoder_hidden_states=context), got)
        # A 64-wide layer: the file has no network of that width, so it is as it was.
        deep = "down_blocks.1.attentions.0.transformer_blocks.0.attn1"
        features = torch.randn(1, 4, 64, generator=generator)
        torch.testing.assert_close(
            patched.unet.get_submodule(deep)(features),
            model.unet.get_submodule(deep)(features),
        )


def test_a_file_of_another_kind_is_refused_by_name(tmp_path):
    torch.save({"state_dict": {"a": torch.zeros(1)}}, tmp_path / "x.pt")
    with pytest.raises(ModelLoadError, match="no networks"):
        load_hypernetwork(tmp_path / "x.pt")
    torch.save({32: [{}, {}], "activation_func": "gelu-ish"}, tmp_path / "y.pt")
    with pytest.raises(ModelLoadError, match="activation"):
        load_hypernetwork(tmp_path / "y.pt")


def test_the_node_changes_the_picture_and_strength_zero_does_not(pipeline, tmp_path):
    hypernetwork_file(tmp_path / "hypernetworks" / "marble.pt", widths=(32, 64))
    write_single_file(pipeline, tmp_path / "checkpoints" / "sd15.safetensors")
    registry = build_registry(ModelPaths.of(tmp_path))
    assert [i.name for i in registry.get("HypernetworkLoader").inputs] == [
        "model",
        "hypernetwork_name",
        "strength",
    ]
    g = Graph(registry)
    ckpt = g.add_node(
        "LoadCheckpoint", params={"ckpt_name": "sd15.safetensors", "dtype": "float32"}
    ).id
    hyper = g.add_node(
        "HypernetworkLoader", params={"hypernetwork_name": "marble.pt", "strength": 1.0}
    ).id
    prompt = g.add_node("CLIPTextEncode", params={"text": "a statue"}).id
    latent = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    samplers = []
    for model in (ckpt, hyper):
        sampler = g.add_node("KSampler", params={"steps": 2, "cfg": 1.0}).id
        g.connect(model, "MODEL", sampler, "model")
        g.connect(prompt, "CONDITIONING", sampler, "positive")
        g.connect(prompt, "CONDITIONING", sampler, "negative")
        g.connect(latent, "LATENT", sampler, "latent_image")
        samplers.append(sampler)
    g.connect(ckpt, "MODEL", hyper, "model")
    g.connect(ckpt, "CLIP", prompt, "clip")
    executor = Executor(registry)
    report = executor.run(g, outputs=samplers, device="cpu")
    assert report.status == "ok", report.to_dict()
    plain, changed = (report.outputs[s][0]["samples"] for s in samplers)
    assert not torch.allclose(plain, changed)
    g.set_param(hyper, "strength", 0.0)
    again = executor.run(g, outputs=samplers[1:], device="cpu").outputs[samplers[1]][0]
    torch.testing.assert_close(again["samples"], plain)
