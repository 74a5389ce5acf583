"""Live previews, step history and branching from a step (issue 7), on a tiny checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from core.diffusion import previews
from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor, measure_bytes
from core.engine.events import Preview, Progress
from core.graph import commands as c
from core.graph.model import Graph
from nodes import build_registry
from nodes.previews import continue_from_step
from tests.helpers.tiny_models import make_tiny_pipeline, write_diffusers_folder, write_single_file

STEPS = 5


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "tiny.safetensors"
    )
    return build_registry(ModelPaths.of(root))


def _txt2img(registry, sampler="euler", denoise=1.0) -> tuple[Graph, dict[str, int]]:
    g = Graph(registry)
    ids = {}
    ids["load"] = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    ids["pos"] = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    ids["neg"] = g.add_node("CLIPTextEncode", params={"text": ""}).id
    ids["empty"] = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    ids["sampler"] = g.add_node(
        "KSampler",
        params={"seed": 3, "steps": STEPS, "cfg": 4.0, "sampler_name": sampler, "denoise": denoise},
    ).id
    for enc in ("pos", "neg"):
        g.connect(ids["load"], "CLIP", ids[enc], "clip")
    g.connect(ids["load"], "MODEL", ids["sampler"], "model")
    g.connect(ids["pos"], "CONDITIONING", ids["sampler"], "positive")
    g.connect(ids["neg"], "CONDITIONING", ids["sampler"], "negative")
    g.connect(ids["load"], "VAE", ids["empty"], "vae")
    g.connect(ids["empty"], "LATENT", ids["sampler"], "latent_image")
    return g, ids


def test_signed_factors_are_rescaled_to_unit_range():
    rgb = previews.LatentRgb.from_signed([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], [0, 0, 0.5])
    image = rgb.project(torch.tensor([[[[1.0]], [[-1.0]], [[0.0]], [[5.0]]]]))
    assert image.shape == (1, 1, 1, 3)
    torch.testing.assert_close(image[0, 0, 0], torch.tensor([1.0, 0.0, 0.75]))
    with pytest.raises(ValueError, match="4-channel"):
        rgb.project(torch.zeros(1, 3, 2, 2))


def test_a_folders_own_factors_are_loaded(tmp_path):
    folder = write_diffusers_folder(make_tiny_pipeline(ModelFamily.SD1), tmp_path / "m")
    factors = {"factors": [[0.1, 0.2, 0.3]] * 4, "bias": [0.5, 0.5, 0.5]}
    (folder / previews.LATENT_RGB_FILE).write_text(json.dumps(factors))
    model = load_checkpoint(folder).model
    assert model.preview.factors[0] == (0.1, 0.2, 0.3) and model.preview.bias == (0.5,) * 3
    (folder / previews.LATENT_RGB_FILE).unlink()
    assert load_checkpoint(folder).model.preview is previews.SD1_LATENT_RGB


def test_one_preview_per_step_in_order_each_the_projection_of_that_steps_estimate(registry):
    g, ids = _txt2img(registry)
    events = []
    report = Executor(registry).run(
        g, outputs=[ids["sampler"], ids["load"]], on_event=events.append, device="cpu"
    )
    shown = [e.image for e in events if isinstance(e, Preview) and e.node_id == ids["sampler"]]
    progress = [e.step for e in events if isinstance(e, Progress)]
    assert [p.step for p in shown] == list(range(1, STEPS + 1)) == progress
    assert all(p.total == STEPS for p in shown)
    latent, history = report.outputs[ids["sampler"]]
    assert [r.value for r in report.entries[ids["sampler"]].records] == [history]
    projection = report.outputs[ids["load"]][0].preview
    assert history.projection == projection
    for preview in shown:
        expected = history.picture(preview.step)
        # The history keeps float16 (relative rounding 2^-11 on latents of a few units); the
        # preview was made from the float32 estimate. A wrong step would be off by ~0.1.
        torch.testing.assert_close(preview.image, expected, atol=1e-2, rtol=0)
    assert preview.image.shape == (1, *latent["samples"].shape[2:], 3)


def test_history_slicing_and_latent_from_history(registry):
    g, ids = _txt2img(registry, denoise=0.6)
    pick = g.add_node("LatentFromHistory", params={"step": 7, "which": "denoised"}).id
    g.connect(ids["sampler"], "HISTORY", pick, "history")
    report = Executor(registry).run(g, outputs=[ids["sampler"], pick], device="cpu")
    _, history = report.outputs[ids["sampler"]]
    # denoise 0.6 of 5 steps runs the last 5 steps of an 8-step schedule: steps 4..8
    assert history.total == 8 and history.steps == [4, 5, 6, 7, 8] and len(history) == 5
    [picked] = report.outputs[pick]
    assert torch.equal(picked["samples"], history.at(7, "denoised"))
    assert picked["downscale"] == history.downscale
    with pytest.raises(KeyError, match="steps 4…8"):
        history.at(2)
    g.set_param(pick, "step", 2)
    failed = Executor(registry).run(g, outputs=[pick], device="cpu")
    assert failed.entries[pick].status == "failed" and failed.entries[pick].field == "step"
    assert measure_bytes(history) >= sum(t.nbytes for t in history.latents + history.denoised)


def test_continue_from_step_unchanged_equals_the_uncut_run(registry):
    g, ids = _txt2img(registry, sampler="euler")
    executor = Executor(registry)
    first = executor.run(g, outputs=[ids["sampler"]], device="cpu")
    uncut, history = first.outputs[ids["sampler"]]
    stack = c.UndoStack(g)
    stack.push(continue_from_step(g, ids["sampler"], 2, history.total))
    branch = max(g.nodes)
    assert g.node(branch).type_id == "KSamplerAdvanced"
    assert g.node(branch).params["start_at_step"] == 2 and not g.node(branch).params["add_noise"]
    second = executor.run(g, outputs=[branch], device="cpu")
    assert second.status_of(ids["sampler"]) == "cached"  # the first steps are not recomputed
    continued, branch_history = second.outputs[branch]
    assert branch_history.steps == [3, 4, 5]
    # x_t at step 2 went through the history's float16, hence the tolerance
    torch.testing.assert_close(continued["samples"], uncut["samples"], atol=5e-3, rtol=1e-3)
    stack.undo()
    assert branch not in g and len(g) == 5


def test_preview_latent_node_shows_projection_and_channels(registry):
    g, ids = _txt2img(registry)
    show = g.add_node("PreviewLatent").id
    g.connect(ids["sampler"], "LATENT", show, "samples")
    g.connect(ids["load"], "MODEL", show, "model")
    report = Executor(registry).run(g, outputs=[show], device="cpu")
    images = [r.value for r in report.entries[show].records if r.kind == "images"]
    latent_hw = (32 // 2, 32 // 2)  # the tiny VAE has 2 pixels per latent cell
    assert images[0].shape == (1, *latent_hw, 3)
    assert images[1].shape == (1, 2 * latent_hw[0] + 1, 2 * latent_hw[1] + 1, 3)  # 2×2 tiles
    g.set_param(show, "mode", "vae")
    vae_mode = Executor(registry).run(g, outputs=[show], device="cpu")
    assert vae_mode.entries[show].field == "vae"  # no VAE linked: a clear, pinned error
    g.connect(ids["load"], "VAE", show, "vae")
    decoded = Executor(registry).run(g, outputs=[show], device="cpu")
    assert next(r.value for r in decoded.entries[show].records).shape == (1, 32, 32, 3)


def test_headless_run_writes_step_previews_and_an_animation(registry, tmp_path, monkeypatch):
    import main
    from core.graph.workflow import save_workflow
    from nodes.cli import common as cli_common

    g, ids = _txt2img(registry)
    decode = g.add_node("VAEDecode").id
    save = g.add_node("SaveImage", params={"filename_prefix": "p"}).id
    g.connect(ids["sampler"], "LATENT", decode, "samples")
    g.connect(ids["load"], "VAE", decode, "vae")
    g.connect(decode, "IMAGE", save, "images")
    path = tmp_path / "flow.json"
    save_workflow(g, path)
    monkeypatch.setattr(cli_common, "registry", lambda roots=(): registry)
    folder = tmp_path / "steps"
    code = main.main(
        [
            "run",
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--previews",
            str(folder),
            "--animation",
        ]
    )
    assert code == 0
    sid = ids["sampler"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [f"node{sid}_step{k:03d}.png" for k in range(1, STEPS + 1)] + [f"node{sid}_denoising.gif"]
    )
    from PIL import Image

    with Image.open(folder / f"node{sid}_denoising.gif") as gif:
        assert min(gif.size) >= 256
        # Pillow merges identical consecutive frames (adding their durations), so count time
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert sum(durations) == STEPS * 120


def test_vae_preview_every_k_steps_decodes_that_steps_estimate_and_changes_no_result(registry):
    from core.diffusion import vae_ops

    g, ids = _txt2img(registry)
    executor = Executor(registry)
    events = []
    report = executor.run(
        g,
        outputs=[ids["sampler"], ids["load"]],
        on_event=events.append,
        device="cpu",
        preview_vae_every=2,
    )
    shown = [e.image for e in events if isinstance(e, Preview) and e.node_id == ids["sampler"]]
    # every 2nd step of 5, and always the last; no projected previews in between (no flicker)
    assert [p.step for p in shown] == [2, 4, 5]
    assert {p.source for p in shown} == {"vae"}
    assert [e.step for e in events if isinstance(e, Progress)] == list(range(1, STEPS + 1))
    _, history = report.outputs[ids["sampler"]]
    vae = report.outputs[ids["load"]][2]
    for preview in shown:
        assert preview.image.shape == (1, 32, 32, 3)  # full resolution, not latent resolution
        expected = vae_ops.decode(vae, history.at(preview.step, "denoised").float())
        torch.testing.assert_close(preview.image, expected, atol=2e-2, rtol=0)
    # A display choice only: the same graph without VAE previews is a cache hit.
    again = executor.run(g, outputs=[ids["sampler"]], device="cpu")
    assert again.status_of(ids["sampler"]) == "cached"


def test_vae_preview_falls_back_to_the_projection_for_a_model_without_its_vae(registry, tmp_path):
    import dataclasses

    from core.diffusion import latents
    from core.diffusion.sampling import SamplerSettings
    from core.diffusion.text_encoding import encode_prompt
    from core.engine.context import CancelToken, NodeContext
    from nodes.sampling import _run

    g, ids = _txt2img(registry)
    model, clip, _ = (
        Executor(registry).run(g, outputs=[ids["load"]], device="cpu").outputs[ids["load"]]
    )
    assert model.preview_vae is not None  # the loader hands the checkpoint's VAE to its MODEL
    events = []
    ctx = NodeContext(
        1, "KSampler", CancelToken(), events.append, tmp_path, device="cpu", preview_vae_every=2
    )
    cond = encode_prompt(clip, "a red circle")
    settings = SamplerSettings("euler", "normal", 3, 2.0, 1)
    bare = dataclasses.replace(model, preview_vae=None)
    _run(ctx, bare, cond, cond, latents.empty(32, 32, 1, 2), settings, None)
    shown = [e.image for e in events if isinstance(e, Preview)]
    assert [p.step for p in shown] == [1, 2, 3] and {p.source for p in shown} == {"latent"}


def test_headless_vae_previews_every_k_steps(registry, tmp_path, monkeypatch):
    import main
    from core.graph.workflow import save_workflow
    from nodes.cli import common as cli_common

    g, ids = _txt2img(registry)
    show = g.add_node("PreviewLatent").id  # an output node, so the sampler runs
    g.connect(ids["sampler"], "LATENT", show, "samples")
    g.connect(ids["load"], "MODEL", show, "model")
    path = tmp_path / "flow.json"
    save_workflow(g, path)
    monkeypatch.setattr(cli_common, "registry", lambda roots=(): registry)
    folder = tmp_path / "steps"
    args = ["run", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"]
    code = main.main([*args, "--previews", str(folder), "--preview-vae-every", "2"])
    assert code == 0
    sid = ids["sampler"]
    assert sorted(p.name for p in folder.iterdir()) == [
        f"node{sid}_step{k:03d}.png" for k in (2, 4, 5)
    ]
    with pytest.raises(SystemExit):
        main.main([*args, "--preview-vae-every", "-1"])
