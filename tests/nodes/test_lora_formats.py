"""LoRA, LoCon, LoHa and LoKr files applied through the Load LoRA node on a tiny SD 1.x
checkpoint: each patched weight is the base plus strength·ΔW, ΔW computed here from the
published formulas; keys that are no layer are left out with a notice."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file

LINEAR = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"  # 32 → 64
CONV = "down_blocks.0.resnets.0.conv1"  # 32 → 32, 3×3
CONV2 = "down_blocks.0.resnets.0.conv2"
TEXT = "encoder.layers.0.self_attn.q_proj"  # 32 → 32


def kohya(module: str, component: str = "unet") -> str:
    """The kohya key stem of a module: dots as underscores, text encoders from text_model."""
    path = module if component == "unet" else f"text_model.{module}"
    return f"lora_{component}_{path.replace('.', '_')}"


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def tucker(core, a, b):
    """W[p, q, k, l] = Σ_ij core[i, j, k, l] · a[i, p] · b[j, q], as matrix products."""
    spatial = core.permute(2, 3, 0, 1)  # [k, l, i, j]
    return (a.T @ spatial @ b).permute(2, 3, 0, 1)


def kronecker(w1, w2):
    """The Kronecker product written out block by block."""
    rows, cols = w1.shape[:2]
    blocks = [torch.cat([w1[i, j] * w2 for j in range(cols)], dim=1) for i in range(rows)]
    return torch.cat(blocks, dim=0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "tiny.safetensors"
    )
    (root / "loras").mkdir()
    return root


@pytest.fixture(scope="module")
def runner(root):
    """Runs Load Checkpoint (float32) → Load LoRA on a file; returns base, patched, report."""
    registry = build_registry(ModelPaths.of(root))
    executor = Executor(registry)

    def run(tensors, strength_model=1.0, strength_clip=1.0, name="test.safetensors"):
        save_file({k: v.contiguous() for k, v in tensors.items()}, root / "loras" / name)
        g = Graph(registry)
        load = g.add_node(
            "LoadCheckpoint", params={"ckpt_name": "tiny.safetensors", "dtype": "float32"}
        ).id
        lora = g.add_node(
            "LoadLoRA",
            params={
                "lora_name": name,
                "strength_model": strength_model,
                "strength_clip": strength_clip,
            },
        ).id
        g.connect(load, "MODEL", lora, "model")
        g.connect(load, "CLIP", lora, "clip")
        report = executor.run(g, outputs=[load, lora], device="cpu")
        base = report.outputs[load]
        return base, report.outputs.get(lora), report.entries[lora]

    return run


def unet_weight(model, name):
    return model.unet.get_submodule(name).weight


def test_loha_on_linear_conv_tucker_conv_and_text_encoder(runner):
    linear = {"w1a": rand(64, 4), "w1b": rand(4, 32, seed=1), "w2a": rand(64, 4, seed=2)}
    linear["w2b"] = rand(4, 32, seed=3)
    conv = [rand(32, 2, seed=4), rand(2, 32 * 9, seed=5), rand(32, 2, seed=6)]
    conv.append(rand(2, 32 * 9, seed=7))
    # Tucker form: cores [r, r, 3, 3], a [r, out], b [r, in].
    t1, t2 = rand(3, 3, 3, 3, seed=8), rand(3, 3, 3, 3, seed=9)
    ta, tb = [rand(3, 32, seed=s) for s in (10, 11)], [rand(3, 32, seed=s) for s in (12, 13)]
    text = [rand(32, 2, seed=14), rand(2, 32, seed=15), rand(32, 2, seed=16)]
    text.append(rand(2, 32, seed=17))
    names = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    tensors = {f"{kohya(LINEAR)}.{n}": v for n, v in zip(names, linear.values(), strict=True)}
    tensors[f"{kohya(LINEAR)}.alpha"] = torch.tensor(2.0)
    tensors.update({f"{kohya(CONV)}.{n}": v for n, v in zip(names, conv, strict=True)})
    tensors.update({f"{kohya(CONV)}.alpha": torch.tensor(1.0)})
    tensors.update(
        {
            f"{kohya(CONV2)}.hada_w1_a": ta[0],
            f"{kohya(CONV2)}.hada_w1_b": ta[1],
            f"{kohya(CONV2)}.hada_w2_a": tb[0],
            f"{kohya(CONV2)}.hada_w2_b": tb[1],
            f"{kohya(CONV2)}.hada_t1": t1,
            f"{kohya(CONV2)}.hada_t2": t2,
            f"{kohya(CONV2)}.alpha": torch.tensor(6.0),
        }
    )
    tensors.update({f"{kohya(TEXT, 'te')}.{n}": v for n, v in zip(names, text, strict=True)})
    (model0, clip0, _), (model, clip), entry = runner(tensors, 0.7, -0.5)
    assert entry.status == "ran" and not entry.records

    loha_linear = (linear["w1a"] @ linear["w1b"]) * (linear["w2a"] @ linear["w2b"]) * 2.0 / 4
    loha_conv = ((conv[0] @ conv[1]) * (conv[2] @ conv[3]) * 1.0 / 2).reshape(32, 32, 3, 3)
    loha_tucker = tucker(t1, *ta) * tucker(t2, *tb) * 6.0 / 3
    loha_text = (text[0] @ text[1]) * (text[2] @ text[3])  # no alpha: α = rank
    for name, delta in ((LINEAR, loha_linear), (CONV, loha_conv), (CONV2, loha_tucker)):
        torch.testing.assert_close(
            unet_weight(model, name), unet_weight(model0, name) + 0.7 * delta
        )
    text_weight = clip.encoders[0].model.get_submodule(TEXT).weight
    base_text = clip0.encoders[0].model.get_submodule(TEXT).weight
    torch.testing.assert_close(text_weight, base_text - 0.5 * loha_text)
    assert unet_weight(model, "conv_in") is unet_weight(model0, "conv_in")  # shared, untouched


def test_lokr_whole_factored_and_tucker_factors(runner):
    # Linear 32 → 64 = (8 ⊗ 8) × (4 ⊗ 8): w1 whole, w2 a rank-2 product → scale α / 2.
    w1, w2a, w2b = rand(8, 4), rand(8, 2, seed=1), rand(2, 8, seed=2)
    # Text q_proj 32 → 32, both factors whole: scale 1 whatever α says.
    tw1, tw2 = rand(4, 4, seed=3), rand(8, 8, seed=4)
    # Conv 32 → 32 3×3: w1 a rank-2 product, w2 a whole kernel [8, 8, 3, 3] → scale α / 2.
    cw1a, cw1b, cw2 = rand(4, 2, seed=5), rand(2, 4, seed=6), rand(8, 8, 3, 3, seed=7)
    # Conv2: w1 whole, w2 in Tucker form (core [3, 3, 3, 3], a [3, 8], b [3, 8]).
    kw1, core, ka, kb = rand(4, 4, seed=8), rand(3, 3, 3, 3, seed=9), rand(3, 8), rand(3, 8)
    tensors = {
        f"{kohya(LINEAR)}.lokr_w1": w1,
        f"{kohya(LINEAR)}.lokr_w2_a": w2a,
        f"{kohya(LINEAR)}.lokr_w2_b": w2b,
        f"{kohya(LINEAR)}.alpha": torch.tensor(1.0),
        f"{kohya(TEXT, 'te')}.lokr_w1": tw1,
        f"{kohya(TEXT, 'te')}.lokr_w2": tw2,
        f"{kohya(TEXT, 'te')}.alpha": torch.tensor(5.0),
        f"{kohya(CONV)}.lokr_w1_a": cw1a,
        f"{kohya(CONV)}.lokr_w1_b": cw1b,
        f"{kohya(CONV)}.lokr_w2": cw2,
        f"{kohya(CONV)}.alpha": torch.tensor(4.0),
        f"{kohya(CONV2)}.lokr_w1": kw1,
        f"{kohya(CONV2)}.lokr_w2_a": ka,
        f"{kohya(CONV2)}.lokr_w2_b": kb,
        f"{kohya(CONV2)}.lokr_t2": core,
        f"{kohya(CONV2)}.alpha": torch.tensor(3.0),
    }
    (model0, clip0, _), (model, clip), entry = runner(tensors, 1.5, 1.0)
    assert entry.status == "ran"

    def conv_kron(first, kernel):
        return torch.stack(
            [
                torch.stack([kronecker(first, kernel[:, :, k, j]) for j in range(3)], -1)
                for k in range(3)
            ],
            -2,
        )

    expected = {
        LINEAR: kronecker(w1, w2a @ w2b) * 1.0 / 2,
        CONV: conv_kron(cw1a @ cw1b, cw2) * 4.0 / 2,
        CONV2: conv_kron(kw1, tucker(core, ka, kb)) * 3.0 / 3,
    }
    for name, delta in expected.items():
        torch.testing.assert_close(
            unet_weight(model, name), unet_weight(model0, name) + 1.5 * delta
        )
    torch.testing.assert_close(
        clip.encoders[0].model.get_submodule(TEXT).weight,
        clip0.encoders[0].model.get_submodule(TEXT).weight + kronecker(tw1, tw2),
    )


def test_lora_with_alpha_but_no_metadata_and_a_tucker_conv(runner):
    down, up = rand(4, 32), rand(64, 4, seed=1)
    cdown, cmid, cup = rand(2, 32, 1, 1, seed=2), rand(2, 2, 3, 3, seed=3), rand(32, 2, 1, 1)
    tensors = {
        f"{kohya(LINEAR)}.lora_down.weight": down,
        f"{kohya(LINEAR)}.lora_up.weight": up,
        f"{kohya(LINEAR)}.alpha": torch.tensor(3.0),  # rank 4 read from the shape
        f"{kohya(CONV)}.lora_down.weight": cdown,
        f"{kohya(CONV)}.lora_mid.weight": cmid,
        f"{kohya(CONV)}.lora_up.weight": cup,
        f"{kohya(CONV)}.alpha": torch.tensor(1.0),
    }
    (model0, _, _), (model, _), entry = runner(tensors, 0.5)
    assert entry.status == "ran"
    mid = torch.einsum("abkl->klab", cmid)  # ΔW[:, :, k, l] = up · mid[:, :, k, l] · down
    conv_delta = (cup.flatten(1) @ mid @ cdown.flatten(1)).permute(2, 3, 0, 1) / 2
    torch.testing.assert_close(
        unet_weight(model, LINEAR), unet_weight(model0, LINEAR) + 0.5 * (up @ down) * 3.0 / 4
    )
    torch.testing.assert_close(
        unet_weight(model, CONV), unet_weight(model0, CONV) + 0.5 * conv_delta
    )


def test_keys_that_are_no_layer_are_left_out_with_a_notice(runner):
    down, up = rand(2, 32), rand(64, 2, seed=1)
    tensors = {
        f"{kohya(LINEAR)}.lora_down.weight": down,
        f"{kohya(LINEAR)}.lora_up.weight": up,
        f"{kohya(CONV)}.diff": rand(32, 32, 3, 3),  # a full-weight difference: not supported
        "emb_params": rand(2, 32),  # a bundled embedding
        "lora_unet_no_such_block.lora_down.weight": rand(2, 8),
        "lora_unet_no_such_block.lora_up.weight": rand(8, 2),
    }
    (model0, _, _), (model, _), entry = runner(tensors, name="mixed.safetensors")
    assert entry.status == "ran"
    torch.testing.assert_close(unet_weight(model, LINEAR), unet_weight(model0, LINEAR) + up @ down)
    assert unet_weight(model, CONV) is unet_weight(model0, CONV)
    notices = [r.value for r in entry.records if r.kind == "notice"]
    assert len(notices) == 2
    assert notices[0].startswith("mixed.safetensors: 2 keys are no LoRA, LoHa or LoKr layer")
    assert "'emb_params'" in notices[0] and f"'{kohya(CONV)}.diff'" in notices[0]
    assert notices[1] == (
        "mixed.safetensors: 1 of 2 layers match no layer of the loaded model and were left out"
    )


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        (
            {
                f"{kohya(LINEAR)}.lora_down.weight": rand(2, 32),
                f"{kohya(LINEAR)}.lora_up.weight": rand(64, 2),
                f"{kohya(LINEAR)}.dora_scale": rand(64, 1),
            },
            "is a DoRA",
        ),
        (
            {
                f"{kohya(LINEAR)}.hada_w1_a": rand(64, 2),
                f"{kohya(LINEAR)}.hada_w1_b": rand(2, 48),  # 48 inputs: another model's layer
                f"{kohya(LINEAR)}.hada_w2_a": rand(64, 2),
                f"{kohya(LINEAR)}.hada_w2_b": rand(2, 48),
            },
            "does not fit the loaded model at layer",
        ),
    ],
    ids=["dora", "wrong-shape"],
)
def test_files_that_cannot_apply_fail_on_the_lora_name(runner, tensors, message):
    _, outputs, entry = runner(tensors, name="bad.safetensors")
    assert outputs is None and entry.status == "failed" and entry.field == "lora_name"
    assert "bad.safetensors" in entry.message and message in entry.message
    assert "\n" not in entry.message
