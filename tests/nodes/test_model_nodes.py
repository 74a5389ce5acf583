"""Loader and conditioning nodes, run through the engine on tiny random checkpoints."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.devices import pick_dtype
from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.diffusion.text_encoding import encode_prompt
from core.engine import Executor, ValidationError
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints" / "sd").mkdir(parents=True)
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "sd" / "tiny.safetensors"
    )
    (root / "loras").mkdir()
    return root


@pytest.fixture(scope="module")
def registry(root):
    return build_registry(ModelPaths.of(root))


def _encode_graph(registry, prompt="a red circle", ckpt="sd/tiny.safetensors"):
    g = Graph(registry)
    # float32 text encoder: the tests compare with the library's float32 load, exactly.
    params = {"ckpt_name": ckpt, "vae_clip_dtype": "float32"}
    load = g.add_node("LoadCheckpoint", params=params).id
    enc = g.add_node("CLIPTextEncode", params={"text": prompt}).id
    g.connect(load, "CLIP", enc, "clip")
    return g, load, enc


def test_loader_choices_come_from_the_model_folders(registry):
    widget = registry.get("LoadCheckpoint").input("ckpt_name")
    assert registry.choices(widget) == ("sd/tiny.safetensors",)


def test_checkpoint_and_text_encode_match_the_library_directly(registry, root):
    g, load, enc = _encode_graph(registry)
    report = Executor(registry).run(g, outputs=[enc], device="cpu")
    [cond] = report.outputs[enc]
    expected = encode_prompt(
        load_checkpoint(root / "checkpoints" / "sd" / "tiny.safetensors").clip, "a red circle"
    )
    torch.testing.assert_close(cond[0].embeds, expected[0].embeds)
    model, _, vae = Executor(registry).run(g, outputs=[load], device="cpu").outputs[load]
    assert model.family is ModelFamily.SD1 and vae.scaling_factor > 0


def test_missing_checkpoint_is_reported_with_folders_searched(registry, root):
    g, load, enc = _encode_graph(registry, ckpt="nope.safetensors")
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(g, outputs=[enc])
    [problem] = info.value.problems
    assert problem.node_id == load and problem.field == "ckpt_name"
    assert "'nope.safetensors'" in problem.message and str(root / "checkpoints") in problem.message


def test_model_is_cached_until_the_file_changes(registry, root):
    g, load, enc = _encode_graph(registry)
    executor = Executor(registry)
    executor.run(g, outputs=[enc], device="cpu")
    second = executor.run(g, outputs=[enc], device="cpu")
    assert second.status_of(enc) == "cached"
    g.set_param(enc, "text", "a blue square")
    third = executor.run(g, outputs=[enc], device="cpu")
    assert third.status_of(load) == "cached" and third.status_of(enc) == "ran"
    path = root / "checkpoints" / "sd" / "tiny.safetensors"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert executor.run(g, outputs=[enc], device="cpu").status_of(load) == "ran"


def test_clip_set_last_layer(registry):
    g, load, enc = _encode_graph(registry)
    skip = g.add_node("CLIPSetLastLayer", params={"stop_at_clip_layer": -2}).id
    g.connect(load, "CLIP", skip, "clip")
    enc2 = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    g.connect(skip, "CLIP", enc2, "clip")
    report = Executor(registry).run(g, outputs=[enc, enc2], device="cpu")
    assert not torch.equal(report.outputs[enc][0][0].embeds, report.outputs[enc2][0][0].embeds)
    g.set_param(skip, "stop_at_clip_layer", -24)  # the tiny encoder has far fewer layers
    bad = Executor(registry).run(g, outputs=[enc2], device="cpu")
    assert bad.entries[skip].status == "failed" and bad.entries[skip].field == "stop_at_clip_layer"


def test_conditioning_nodes(registry):
    g, load, enc = _encode_graph(registry, "a red circle")
    enc_b = g.add_node("CLIPTextEncode", params={"text": "a blue square"}).id
    g.connect(load, "CLIP", enc_b, "clip")
    ops = {}
    for type_id, params in [
        ("ConditioningCombine", {}),
        ("ConditioningAverage", {"conditioning_to_strength": 0.25}),
        ("ConditioningConcat", {}),
    ]:
        node = g.add_node(type_id, params=params).id
        first, second = [i.name for i in registry.get(type_id).sockets]
        g.connect(enc, "CONDITIONING", node, first)
        g.connect(enc_b, "CONDITIONING", node, second)
        ops[type_id] = node
    area = g.add_node("ConditioningSetArea", params={"x": 8, "width": 32, "strength": 0.5}).id
    zero = g.add_node("ConditioningZeroOut").id
    g.connect(enc, "CONDITIONING", area, "conditioning")
    g.connect(enc, "CONDITIONING", zero, "conditioning")
    out = Executor(registry).run(g, outputs=[enc, enc_b, *ops.values(), area, zero]).outputs
    a, b = out[enc][0][0].embeds, out[enc_b][0][0].embeds
    assert len(out[ops["ConditioningCombine"]][0]) == 2
    torch.testing.assert_close(out[ops["ConditioningAverage"]][0][0].embeds, 0.25 * a + 0.75 * b)
    assert out[ops["ConditioningConcat"]][0][0].embeds.shape[1] == a.shape[1] + b.shape[1]
    options = out[area][0][0].options
    assert (options.area.x, options.area.width, options.strength) == (8, 32, 0.5)
    assert out[zero][0][0].embeds.abs().sum() == 0


def test_lora_node_patches_a_copy(registry, root):
    pipe = load_checkpoint(root / "checkpoints" / "sd" / "tiny.safetensors")
    conv = pipe.model.unet.conv_in.weight
    down = torch.randn(2, conv.shape[1], *conv.shape[2:])
    up = torch.randn(conv.shape[0], 2, 1, 1)
    save_file(
        {
            "lora_unet_conv_in.lora_down.weight": down,
            "lora_unet_conv_in.lora_up.weight": up,
            "lora_unet_conv_in.alpha": torch.tensor(2.0),
        },
        root / "loras" / "style.safetensors",
    )
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "sd/tiny.safetensors"}).id
    lora = g.add_node(
        "LoadLoRA", params={"lora_name": "style.safetensors", "strength_model": 0.5}
    ).id
    g.connect(load, "MODEL", lora, "model")
    g.connect(load, "CLIP", lora, "clip")
    report = Executor(registry).run(g, outputs=[load, lora], device="cpu")
    base, patched = report.outputs[load][0], report.outputs[lora][0]
    base_w, new_w = base.unet.conv_in.weight, patched.unet.conv_in.weight
    assert not torch.equal(base_w, new_w)
    assert base_w.dtype == pick_dtype(torch.device("cpu"))  # auto: bf16 where the CPU runs it
    assert torch.equal(base_w, conv.to(base_w.dtype))  # the cached base model is untouched


@pytest.mark.parametrize(
    ("flags", "dtype", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, "auto", torch.bfloat16),
        ({"avx512f", "avx512_bf16"}, "bfloat16", torch.bfloat16),
        ({"avx512f", "avx512_bf16"}, "float32", torch.float32),
        ({"avx2"}, "auto", torch.float32),
        ({"avx2"}, "bfloat16", torch.float32),
    ],
)
def test_auto_vae_clip_dtype_follows_a_bf16_unet_on_a_native_bf16_cpu(
    registry, monkeypatch, flags, dtype, expected
):
    from core.diffusion import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
    g = Graph(registry)
    load = g.add_node(
        "LoadCheckpoint", params={"ckpt_name": "sd/tiny.safetensors", "dtype": dtype}
    ).id
    _, clip, vae = Executor(registry).run(g, outputs=[load], device="cpu").outputs[load]
    assert next(vae.vae.parameters()).dtype == expected
    assert {next(e.model.parameters()).dtype for e in clip.encoders} == {expected}


def test_nodes_place_models_on_the_device_offloading_idle_ones(registry, monkeypatch):
    """With a fake 'GPU' that holds one model at a time, text encoding, sampling and decoding
    each bring their model onto it and push the previous one back to host memory."""
    from core.diffusion.cache import DeviceResidency
    from nodes import placement

    moves: list[tuple[str, str]] = []
    names: dict[int, str] = {}

    def fake_move(modules, device):
        for module in modules:
            moves.append((names.get(id(module), type(module).__name__), device.type))

    gpu = DeviceResidency(
        torch.device("cuda"),
        budget_bytes=1,
        offload_device=torch.device("cpu"),
        move=fake_move,
        parts=lambda module: [(module, 1)],  # each model moves as one piece of one byte
    )
    monkeypatch.setattr("core.diffusion.cache.residency_for", lambda device: gpu)
    monkeypatch.setattr(placement, "compute_device", lambda ctx: torch.device("cpu"))
    g, load, enc = _encode_graph(registry)
    empty = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    g.connect(load, "VAE", empty, "vae")
    sampler = g.add_node("KSampler", params={"steps": 1, "cfg": 1.0}).id
    decode = g.add_node("VAEDecode").id
    g.connect(load, "MODEL", sampler, "model")
    g.connect(enc, "CONDITIONING", sampler, "positive")
    g.connect(enc, "CONDITIONING", sampler, "negative")
    g.connect(empty, "LATENT", sampler, "latent_image")
    g.connect(sampler, "LATENT", decode, "samples")
    g.connect(load, "VAE", decode, "vae")
    executor = Executor(registry)
    model, clip, vae = executor.run(g, outputs=[load], device="cpu").outputs[load]
    names.update({id(model.unet): "unet", id(vae.vae): "vae", id(clip.encoders[0].model): "clip"})
    report = executor.run(g, outputs=[decode], device="cpu")
    assert report.status == "ok", {n: e.message for n, e in report.entries.items()}
    assert moves == [
        ("clip", "cuda"),
        ("clip", "cpu"),
        ("unet", "cuda"),
        ("unet", "cpu"),
        ("vae", "cuda"),
    ]


def test_guidance_interval_node_limits_the_models_guidance(registry):
    g, load, _ = _encode_graph(registry)
    interval = g.add_node("GuidanceInterval", params={"sigma_low": 1.1, "sigma_high": 8.0}).id
    g.connect(load, "MODEL", interval, "model")
    executor = Executor(registry)
    report = executor.run(g, outputs=[load, interval], device="cpu")
    plain = report.outputs[load][0]
    [limited] = report.outputs[interval]
    assert limited.guidance_interval == (1.1, 8.0) and plain.guidance_interval is None
    assert limited.unet is plain.unet  # the weights are shared, not copied
    # Bounds the wrong way round are caught before anything runs, naming the field.
    g.set_param(interval, "sigma_low", 9.0)
    with pytest.raises(ValidationError) as info:
        executor.run(g, outputs=[interval], device="cpu")
    [problem] = info.value.problems
    assert problem.node_id == interval and problem.field == "sigma_low"
    assert "below sigma_high" in problem.message


def test_model_sampling_discrete_node_reads_the_model_as_another_prediction(registry, root):
    from core.diffusion.families import PredictionType

    g, load, _ = _encode_graph(registry)
    node = g.add_node("ModelSamplingDiscrete", params={"sampling": "v_prediction"}).id
    g.connect(load, "MODEL", node, "model")
    assert [i.name for i in registry.get("ModelSamplingDiscrete").inputs] == [
        "model",
        "sampling",
        "zsnr",
    ]
    executor = Executor(registry)
    report = executor.run(g, outputs=[load, node], device="cpu")
    plain = report.outputs[load][0]
    [v_model] = report.outputs[node]
    assert v_model.prediction is PredictionType.V_PREDICTION and v_model.unet is plain.unet
    assert plain.prediction is PredictionType.EPSILON
    assert not plain.scheduler_config.get("rescale_betas_zero_snr")
    g.set_param(node, "sampling", "x0")
    g.set_param(node, "zsnr", True)
    [x0] = executor.run(g, outputs=[node], device="cpu").outputs[node]
    assert x0.prediction is PredictionType.SAMPLE and x0.scheduler_config["rescale_betas_zero_snr"]
    # LCM: ε on the 50 distilled levels with the consistency boundary condition.
    g.set_param(node, "sampling", "lcm")
    [lcm] = executor.run(g, outputs=[node], device="cpu").outputs[node]
    assert lcm.prediction is PredictionType.EPSILON and lcm.unet is plain.unet
    assert lcm.scheduler_config["model_sampling"] == "lcm"
    assert lcm.scheduler_config["original_inference_steps"] == 50


def test_model_sampling_continuous_edm_node_sets_continuous_levels(registry, root):
    from core.diffusion.families import PredictionType
    from core.diffusion.samplers import NoiseLevels

    g, load, _ = _encode_graph(registry)
    node = g.add_node("ModelSamplingContinuousEDM", params={"sigma_max": 80.0}).id
    g.connect(load, "MODEL", node, "model")
    assert [i.name for i in registry.get("ModelSamplingContinuousEDM").inputs] == [
        "model",
        "sampling",
        "sigma_max",
        "sigma_min",
    ]
    executor = Executor(registry)
    [edm] = executor.run(g, outputs=[node], device="cpu").outputs[node]
    assert edm.prediction is PredictionType.V_PREDICTION
    levels = NoiseLevels.from_config(edm.scheduler_config)
    assert levels.timing == "continuous" and levels.sigma_max == pytest.approx(80.0)
    g.set_param(node, "sampling", "edm")
    [edm] = executor.run(g, outputs=[node], device="cpu").outputs[node]
    assert edm.prediction is PredictionType.EDM
    # Playground v2.5 and inverted ranges are refused before anything runs, by field.
    g.set_param(node, "sampling", "edm_playground_v2.5")
    g.set_param(node, "sigma_min", 100.0)
    with pytest.raises(ValidationError) as info:
        executor.run(g, outputs=[node], device="cpu")
    fields = sorted(p.field for p in info.value.problems)
    assert fields == ["sampling", "sigma_max"]
    assert any("latent format" in p.message for p in info.value.problems)
