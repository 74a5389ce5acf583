"""Whole workflows through the executor on the suite's device: the default text-to-image graph,
a LoRA, inpainting and continuing from a step of the history."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.engine import Executor, RunReport
from core.graph import commands as c
from nodes.previews import continue_from_step
from tests.gpu.conftest import LORA, PICTURE, SAME_WORK, default_workflow

pytestmark = pytest.mark.gpu


def _ok(report: RunReport) -> RunReport:
    assert report.status == "ok", {n: (e.status, e.message) for n, e in report.entries.items()}
    return report


def _sample(executor: Executor, flow, device: str, output_dir: Path) -> tuple[torch.Tensor, ...]:
    """The sampled latent and the decoded picture of ``flow``.

    The tiny random UNet's contribution is small next to the seed's noise, and its pictures
    stay near mid-grey, so differences are judged on latents, where they are clearest."""
    outputs = [flow.sampler, flow.decode]
    report = _ok(executor.run(flow.graph, outputs, device=device, output_dir=output_dir))
    [image] = report.outputs[flow.decode]
    return report.outputs[flow.sampler][0]["samples"], image


def test_default_workflow_is_finite_and_deterministic_per_seed(
    registry, gpu_device, gpu_dtype, tmp_path
):
    flow = default_workflow(registry, gpu_dtype, seed=7)
    executor = Executor(registry)
    outputs = [flow.sampler, flow.decode, flow.save]
    report = _ok(executor.run(flow.graph, outputs, device=gpu_device, output_dir=tmp_path))
    latent = report.outputs[flow.sampler][0]["samples"]
    [picture] = report.outputs[flow.decode]
    assert picture.shape == (1, 64, 64, 3) and picture.device.type == "cpu"
    assert torch.isfinite(latent).all() and torch.isfinite(picture).all()
    assert float(picture.std()) > 0
    [saved] = [r.value for r in report.entries[flow.save].records if r.kind == "file"]
    assert Path(saved).is_file() and Path(saved).parent == tmp_path

    executor.clear_cache()  # load and sample again from nothing: the seed alone decides
    latent_again, picture_again = _sample(executor, flow, gpu_device, tmp_path)
    torch.testing.assert_close(latent_again, latent, **SAME_WORK)
    torch.testing.assert_close(picture_again, picture, atol=2e-3, rtol=0)

    flow.graph.set_param(flow.sampler, "seed", 8)
    other, other_picture = _sample(executor, flow, gpu_device, tmp_path)
    assert torch.isfinite(other).all() and torch.isfinite(other_picture).all()
    assert (other - latent).abs().mean() > 1.0, "another seed gave the same latent"
    assert not torch.equal(other_picture, picture)


def test_the_checkpoint_runs_in_the_requested_precision_on_the_device(
    registry, gpu_device, gpu_dtype
):
    flow = default_workflow(registry, gpu_dtype)
    executor = Executor(registry)
    report = _ok(executor.run(flow.graph, [flow.load, flow.sampler], device=gpu_device))
    model, clip, vae = report.outputs[flow.load]
    wanted = getattr(torch, gpu_dtype)
    assert next(model.unet.parameters()).dtype == wanted
    assert next(vae.vae.parameters()).dtype == wanted
    assert {next(e.model.parameters()).dtype for e in clip.encoders} == {wanted}
    # The sampler used the UNet, so the residency placed it on the run's device.
    assert next(model.unet.parameters()).device.type == torch.device(gpu_device).type


def test_a_lora_changes_the_picture_and_keeps_it_finite(registry, gpu_device, gpu_dtype, tmp_path):
    flow = default_workflow(registry, gpu_dtype, seed=3)
    executor = Executor(registry)
    plain, _ = _sample(executor, flow, gpu_device, tmp_path)

    g = flow.graph
    lora = g.add_node(
        "LoadLoRA", params={"lora_name": LORA, "strength_model": 1.0, "strength_clip": 1.0}
    ).id
    g.connect(flow.load, "MODEL", lora, "model")
    g.connect(flow.load, "CLIP", lora, "clip")
    g.disconnect(flow.guidance, "model")
    g.connect(lora, "MODEL", flow.guidance, "model")
    for encoder in (flow.positive, flow.negative):
        g.disconnect(encoder, "clip")
        g.connect(lora, "CLIP", encoder, "clip")
    report = _ok(executor.run(g, [lora], device=gpu_device))
    assert not [r.value for r in report.entries[lora].records if r.kind == "notice"]
    patched, patched_picture = _sample(executor, flow, gpu_device, tmp_path)
    assert torch.isfinite(patched).all() and torch.isfinite(patched_picture).all()
    # Deterministic runs make an unapplied LoRA show as exactly 0; applied, about 1e-2.
    assert (patched - plain).abs().mean() > 1e-3, "the LoRA did not change the latent"

    # The base model the cache kept is untouched: without the LoRA the first picture returns.
    g.set_param(lora, "strength_model", 0.0)
    g.set_param(lora, "strength_clip", 0.0)
    unpatched, _ = _sample(executor, flow, gpu_device, tmp_path)
    torch.testing.assert_close(unpatched, plain, **SAME_WORK)


def test_inpainting_keeps_the_unmasked_area_of_the_source(
    registry, models_root, gpu_device, gpu_dtype, tmp_path
):
    flow = default_workflow(registry, gpu_dtype, seed=5)
    g = flow.graph
    picture = str(models_root / "input" / PICTURE)
    load_image = g.add_node("LoadImage", params={"image": picture}).id
    encode = g.add_node("VAEEncode").id
    masked = g.add_node("SetLatentNoiseMask").id
    g.connect(load_image, "IMAGE", encode, "pixels")
    g.connect(flow.load, "VAE", encode, "vae")
    g.connect(encode, "LATENT", masked, "samples")
    g.connect(load_image, "MASK", masked, "mask")
    g.disconnect(flow.sampler, "latent_image")
    g.connect(masked, "LATENT", flow.sampler, "latent_image")

    report = _ok(
        Executor(registry).run(
            g,
            [load_image, encode, flow.sampler, flow.decode],
            device=gpu_device,
            output_dir=tmp_path,
        )
    )
    _, mask = report.outputs[load_image]
    assert 0.2 < float(mask.mean()) < 0.3  # the transparent middle square
    source = report.outputs[encode][0]["samples"]
    result = report.outputs[flow.sampler][0]["samples"]
    assert torch.isfinite(result).all()
    # Judged on latents: the random VAE's decoder (its attention block sees every cell) spreads
    # any change over the whole picture. The square's edges fall on whole latent cells.
    cells = torch.nn.functional.interpolate(mask[:, None], size=source.shape[-2:]) > 0.5
    keep = ~cells.expand_as(source)
    torch.testing.assert_close(result[keep], source[keep], atol=1e-5, rtol=0)
    assert (result[~keep] - source[~keep]).abs().mean() > 0.1, "the masked area was not repainted"

    [painted] = report.outputs[flow.decode]
    assert torch.isfinite(painted).all() and painted.shape == (1, 64, 64, 3)


def test_continuing_from_a_kept_step_ends_where_the_uncut_run_ended(
    registry, gpu_device, gpu_dtype
):
    flow = default_workflow(registry, gpu_dtype, seed=11, steps=6)
    g = flow.graph
    g.set_param(flow.sampler, "scheduler", "normal")
    executor = Executor(registry)
    first = _ok(executor.run(g, [flow.sampler], device=gpu_device))
    uncut, history = first.outputs[flow.sampler]
    assert history.steps == [1, 2, 3, 4, 5, 6]
    # The kept steps live in host memory in float16, never on the device.
    kept = history.latents + history.denoised
    assert {(t.device.type, t.dtype) for t in kept} == {("cpu", torch.float16)}

    stack = c.UndoStack(g)
    stack.push(continue_from_step(g, flow.sampler, 3, history.total))
    branch = max(g.nodes)
    second = _ok(executor.run(g, [branch], device=gpu_device))
    assert second.status_of(flow.sampler) == "cached"  # steps 1–3 are not sampled again
    continued, branch_history = second.outputs[branch]
    assert branch_history.steps == [4, 5, 6]
    ends = uncut["samples"]
    assert torch.isfinite(continued["samples"]).all()
    # x_t at step 3 went through the history's float16 (half a unit in the last place of its
    # largest values) and the UNet runs in half precision: allow a few such units.
    largest = float(history.at(3).abs().max())
    tolerance = 4 * 2.0 ** (math.floor(math.log2(largest)) - 10)
    error = float((continued["samples"] - ends).abs().max())
    assert error < tolerance, f"off by {error:.4f} (allowed {tolerance:.4f})"
    # The tolerance tells steps apart: branching from step 1's latent as if it were step 3's.
    picked = [n for n in g.nodes if g.node(n).type_id == "LatentFromHistory"]
    g.set_param(picked[0], "step", 1)
    wrong = _ok(executor.run(g, [branch], device=gpu_device)).outputs[branch][0]["samples"]
    assert float((wrong - ends).abs().max()) > 2 * tolerance
