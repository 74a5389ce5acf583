"""The custom-sampling nodes on a tiny checkpoint: the same picture as KSampler for the same
settings, the sampler and noise options reaching the sampler, guiders, previews, the step
history and continuing from a step, and errors pinned to their inputs."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.engine.events import Preview
from core.graph import commands as c
from core.graph.model import Graph
from nodes import build_registry
from nodes.interop.comfyui.export import to_comfy_api
from nodes.previews import continue_from_step
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file

SEED, STEPS, CFG = 5, 4, 6.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "tiny.safetensors"
    )
    return build_registry(ModelPaths.of(root))


def _base(registry) -> tuple[Graph, dict[str, int]]:
    """A checkpoint, a positive and a negative prompt and an empty 32×32 latent."""
    g = Graph(registry)
    ids = {"load": g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id}
    ids["pos"] = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    ids["neg"] = g.add_node("CLIPTextEncode", params={"text": "blue"}).id
    ids["empty"] = g.add_node("EmptyLatentImage", params={"width": 32, "height": 32}).id
    for enc in ("pos", "neg"):
        g.connect(ids["load"], "CLIP", ids[enc], "clip")
    return g, ids


def _ksampler(g: Graph, ids: dict[str, int], sampler: str, denoise: float = 1.0) -> int:
    params = {"seed": SEED, "steps": STEPS, "cfg": CFG, "sampler_name": sampler}
    node = g.add_node("KSampler", params={**params, "denoise": denoise}).id
    _link_model_and_prompts(g, ids, node)
    g.connect(ids["empty"], "LATENT", node, "latent_image")
    return node


def _link_model_and_prompts(g: Graph, ids: dict[str, int], node: int) -> None:
    g.connect(ids["load"], "MODEL", node, "model")
    g.connect(ids["pos"], "CONDITIONING", node, "positive")
    g.connect(ids["neg"], "CONDITIONING", node, "negative")


def _schedule(g: Graph, ids: dict[str, int], denoise: float = 1.0) -> int:
    params = {"scheduler": "normal", "steps": STEPS, "denoise": denoise}
    node = g.add_node("BasicScheduler", params=params).id
    g.connect(ids["load"], "MODEL", node, "model")
    return node


def _custom(
    g: Graph,
    ids: dict[str, int],
    sampler: int,
    sigmas: int,
    cfg: float = CFG,
    sigmas_output: str = "SIGMAS",
    **params,
) -> int:
    node = g.add_node(
        "SamplerCustom", params={"noise_seed": SEED, "cfg": cfg, "add_noise": True, **params}
    ).id
    _link_model_and_prompts(g, ids, node)
    g.connect(sampler, "SAMPLER", node, "sampler")
    g.connect(sigmas, sigmas_output, node, "sigmas")
    g.connect(ids["empty"], "LATENT", node, "latent_image")
    return node


def _relink(g: Graph, src: int, output: str, dst: int, name: str) -> None:
    g.disconnect(dst, name)
    g.connect(src, output, dst, name)


def _select(g: Graph, name: str) -> int:
    return g.add_node("KSamplerSelect", params={"sampler_name": name}).id


def _samples(report, node: int, output: int = 0) -> torch.Tensor:
    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    return report.outputs[node][output]["samples"]


@pytest.mark.parametrize(
    ("sampler", "denoise"),
    [("euler", 1.0), ("euler", 0.5), ("euler_ancestral", 1.0), ("dpmpp_2m_sde", 1.0)],
)
def test_sampler_custom_gives_exactly_the_ksamplers_latent(registry, executor, sampler, denoise):
    g, ids = _base(registry)
    reference = _ksampler(g, ids, sampler, denoise)
    custom = _custom(g, ids, _select(g, sampler), _schedule(g, ids, denoise))
    report = executor.run(g, outputs=[reference, custom], device="cpu")
    assert torch.equal(_samples(report, custom), _samples(report, reference))


def test_advanced_sampler_with_random_noise_and_cfg_guider_equals_sampler_custom(
    registry, executor
):
    g, ids = _base(registry)
    select, sigmas = _select(g, "euler_ancestral"), _schedule(g, ids)
    custom = _custom(g, ids, select, sigmas)
    guider = g.add_node("CFGGuider", params={"cfg": CFG}).id
    _link_model_and_prompts(g, ids, guider)
    noise = g.add_node("RandomNoise", params={"noise_seed": SEED}).id
    advanced = g.add_node("SamplerCustomAdvanced").id
    for src, out, name in (
        (noise, "NOISE", "noise"),
        (guider, "GUIDER", "guider"),
        (select, "SAMPLER", "sampler"),
        (sigmas, "SIGMAS", "sigmas"),
        (ids["empty"], "LATENT", "latent_image"),
    ):
        g.connect(src, out, advanced, name)
    report = executor.run(g, outputs=[custom, advanced], device="cpu")
    assert torch.equal(_samples(report, advanced), _samples(report, custom))
    # The basic guider is the positive prompt alone: SamplerCustom at CFG 1.
    basic = g.add_node("BasicGuider").id
    g.connect(ids["load"], "MODEL", basic, "model")
    g.connect(ids["pos"], "CONDITIONING", basic, "conditioning")
    _relink(g, basic, "GUIDER", advanced, "guider")
    at_one = _custom(g, ids, select, sigmas, cfg=1.0)
    report = executor.run(g, outputs=[at_one, advanced], device="cpu")
    assert torch.equal(_samples(report, advanced), _samples(report, at_one))


def test_disabled_noise_samples_the_latent_as_it_is(registry, executor):
    """Without initial noise an empty latent stays at the clean end: the sampler starts from
    zeros, so the result differs from the noised run and from the seed's noise alone."""
    g, ids = _base(registry)
    select, sigmas = _select(g, "euler"), _schedule(g, ids)
    noisy = _custom(g, ids, select, sigmas)
    quiet = _custom(g, ids, select, sigmas, add_noise=False)
    report = executor.run(g, outputs=[noisy, quiet], device="cpu")
    assert not torch.allclose(_samples(report, quiet), _samples(report, noisy))
    assert _samples(report, quiet).abs().max() < _samples(report, noisy).abs().max()


def test_sampler_options_reach_the_sampler(registry, executor):
    """Euler ancestral with eta 0 is Euler; LMS of order 1 is Euler too; eta 1 is not."""
    g, ids = _base(registry)
    sigmas = _schedule(g, ids)
    euler = _custom(g, ids, _select(g, "euler"), sigmas)
    still = g.add_node("SamplerEulerAncestral", params={"eta": 0.0, "s_noise": 1.0}).id
    moving = g.add_node("SamplerEulerAncestral", params={"eta": 1.0, "s_noise": 1.0}).id
    first_order = g.add_node("SamplerLMS", params={"order": 1}).id
    runs = {n: _custom(g, ids, n, sigmas) for n in (still, moving, first_order)}
    report = executor.run(g, outputs=[euler, *runs.values()], device="cpu")
    reference = _samples(report, euler)
    assert torch.equal(_samples(report, runs[still]), reference)
    torch.testing.assert_close(_samples(report, runs[first_order]), reference)
    assert not torch.allclose(_samples(report, runs[moving]), reference)


def test_previews_history_and_denoised_output(registry):
    g, ids = _base(registry)
    custom = _custom(g, ids, _select(g, "euler"), _schedule(g, ids))
    events = []
    report = Executor(registry).run(g, outputs=[custom], on_event=events.append, device="cpu")
    output, denoised, history = report.outputs[custom]
    shown = [e.image for e in events if isinstance(e, Preview) and e.node_id == custom]
    assert [p.step for p in shown] == list(range(1, STEPS + 1))
    assert history.total == STEPS and history.steps == list(range(1, STEPS + 1))
    assert [r.value for r in report.entries[custom].records] == [history]
    # The last step ends at σ = 0 with Euler: the latent is that step's estimate.
    torch.testing.assert_close(denoised["samples"], output["samples"])
    torch.testing.assert_close(
        denoised["samples"], history.at(STEPS, "denoised"), atol=1e-2, rtol=1e-2
    )


@pytest.mark.parametrize("kind", ["SamplerCustom", "SamplerCustomAdvanced"])
def test_continue_from_step_unchanged_equals_the_uncut_run(registry, kind):
    g, ids = _base(registry)
    select, sigmas = _select(g, "euler"), _schedule(g, ids)
    if kind == "SamplerCustom":
        sampler = _custom(g, ids, select, sigmas)
    else:
        guider = g.add_node("CFGGuider", params={"cfg": CFG}).id
        _link_model_and_prompts(g, ids, guider)
        noise = g.add_node("RandomNoise", params={"noise_seed": SEED}).id
        sampler = g.add_node("SamplerCustomAdvanced").id
        g.connect(noise, "NOISE", sampler, "noise")
        g.connect(guider, "GUIDER", sampler, "guider")
        g.connect(select, "SAMPLER", sampler, "sampler")
        g.connect(sigmas, "SIGMAS", sampler, "sigmas")
        g.connect(ids["empty"], "LATENT", sampler, "latent_image")
    executor = Executor(registry)
    first = executor.run(g, outputs=[sampler], device="cpu")
    uncut, _, history = first.outputs[sampler]
    before = len(g)
    stack = c.UndoStack(g)
    stack.push(continue_from_step(g, sampler, 2, history.total))
    branch = max(g.nodes)
    assert g.node(branch).type_id == kind
    second = executor.run(g, outputs=[branch], device="cpu")
    assert second.status_of(sampler) == "cached"
    continued, _, branch_history = second.outputs[branch]
    assert branch_history.steps == [1, 2]  # the two steps left of four
    # The step-2 latent went through the history's float16 (relative rounding 2^-11 on values
    # of tens here), hence the tolerance; a wrong branch would be off by whole units.
    torch.testing.assert_close(continued["samples"], uncut["samples"], atol=2e-2, rtol=5e-3)
    stack.undo()
    assert len(g) == before


def test_denoise_zero_returns_the_latent_unchanged(registry, executor):
    g, ids = _base(registry)
    custom = _custom(g, ids, _select(g, "euler"), _schedule(g, ids, denoise=0.0))
    report = executor.run(g, outputs=[custom], device="cpu")
    output, denoised, history = report.outputs[custom]
    assert torch.equal(output["samples"], torch.zeros_like(output["samples"]))
    assert torch.equal(denoised["samples"], output["samples"]) and len(history) == 0


def test_bad_schedules_fail_on_their_input(registry, executor):
    g, ids = _base(registry)
    karras = g.add_node("KarrasScheduler", params={"sigma_min": 20.0, "sigma_max": 10.0}).id
    report = executor.run(g, outputs=[karras], device="cpu")
    entry = report.entries[karras]
    assert entry.status == "failed" and entry.field == "sigma_min"
    assert "below sigma_max" in entry.message
    flip = g.add_node("FlipSigmas").id
    g.connect(_schedule(g, ids), "SIGMAS", flip, "sigmas")
    custom = _custom(g, ids, _select(g, "euler"), flip)
    report = executor.run(g, outputs=[custom], device="cpu")
    entry = report.entries[custom]
    assert entry.status == "failed" and entry.field == "sigmas"
    assert "decrease" in entry.message


def test_add_noise_then_sampling_without_noise_equals_sampling_with_it(registry, executor):
    """Add Noise at the schedule's span, then Sampler Custom without noise: the same latent
    as adding the noise in the sampler when the schedule starts below the model's top
    level (where the latent's own variance does not count)."""
    g, ids = _base(registry)
    sigmas = g.add_node("KarrasScheduler", params={"steps": STEPS, "sigma_max": 5.0}).id
    select = _select(g, "euler")
    direct = _custom(g, ids, select, sigmas)
    noise = g.add_node("RandomNoise", params={"noise_seed": SEED}).id
    add = g.add_node("AddNoise").id
    g.connect(ids["load"], "MODEL", add, "model")
    g.connect(noise, "NOISE", add, "noise")
    g.connect(sigmas, "SIGMAS", add, "sigmas")
    g.connect(ids["empty"], "LATENT", add, "latent_image")
    after = _custom(g, ids, select, sigmas, add_noise=False)
    _relink(g, add, "LATENT", after, "latent_image")
    report = executor.run(g, outputs=[direct, after], device="cpu")
    torch.testing.assert_close(_samples(report, after), _samples(report, direct))


def test_custom_sampling_graph_exports_to_comfyui(registry):
    g, ids = _base(registry)
    select = g.add_node("SamplerDPMPP_2M_SDE", params={"solver_type": "heun"}).id
    sigmas = g.add_node("SDTurboScheduler", params={"steps": 2}).id
    g.connect(ids["load"], "MODEL", sigmas, "model")
    split = g.add_node("SplitSigmas", params={"step": 1}).id
    g.connect(sigmas, "SIGMAS", split, "sigmas")
    custom = _custom(g, ids, select, split, sigmas_output="low_sigmas")
    prompt = to_comfy_api(g)
    assert prompt[str(custom)]["class_type"] == "SamplerCustom"
    assert prompt[str(custom)]["inputs"]["sigmas"] == [str(split), 1]
    assert prompt[str(select)]["inputs"] == {
        "solver_type": "heun",
        "eta": 1.0,
        "s_noise": 1.0,
        "noise_device": "gpu",
    }
    assert prompt[str(sigmas)]["inputs"]["steps"] == 2


def test_dual_cfg_guider_combines_three_predictions(registry, executor):
    """One Euler step from the top level to 0 returns the model's clean estimate, which is
    affine in its prediction; so the dual guider's result is the same combination of the
    three single-prompt results: n + c₂·(m − n) + c₁·(p − m), nested n + c₂·(m + c₁·(p − m) − n).
    """
    g, ids = _base(registry)
    ids["mid"] = g.add_node("CLIPTextEncode", params={"text": "a green square"}).id
    g.connect(ids["load"], "CLIP", ids["mid"], "clip")
    sigmas = g.add_node("SDTurboScheduler", params={"steps": 1}).id
    g.connect(ids["load"], "MODEL", sigmas, "model")
    select, noise = _select(g, "euler"), g.add_node("RandomNoise", params={"noise_seed": 2}).id

    def advanced(guider: int) -> int:
        node = g.add_node("SamplerCustomAdvanced").id
        g.connect(noise, "NOISE", node, "noise")
        g.connect(guider, "GUIDER", node, "guider")
        g.connect(select, "SAMPLER", node, "sampler")
        g.connect(sigmas, "SIGMAS", node, "sigmas")
        g.connect(ids["empty"], "LATENT", node, "latent_image")
        return node

    def basic(prompt: str) -> int:
        guider = g.add_node("BasicGuider").id
        g.connect(ids["load"], "MODEL", guider, "model")
        g.connect(ids[prompt], "CONDITIONING", guider, "conditioning")
        return advanced(guider)

    def dual(style: str) -> int:
        params = {"cfg_conds": 3.0, "cfg_cond2_negative": 2.0, "style": style}
        guider = g.add_node("DualCFGGuider", params=params).id
        g.connect(ids["load"], "MODEL", guider, "model")
        for prompt, name in (("pos", "cond1"), ("mid", "cond2"), ("neg", "negative")):
            g.connect(ids[prompt], "CONDITIONING", guider, name)
        return advanced(guider)

    singles = {prompt: basic(prompt) for prompt in ("pos", "mid", "neg")}
    regular, nested = dual("regular"), dual("nested")
    report = executor.run(g, outputs=[*singles.values(), regular, nested], device="cpu")
    p, m, n = (_samples(report, singles[k]) for k in ("pos", "mid", "neg"))
    torch.testing.assert_close(
        _samples(report, regular), n + 2.0 * (m - n) + 3.0 * (p - m), atol=1e-3, rtol=1e-4
    )
    torch.testing.assert_close(
        _samples(report, nested), n + 2.0 * (m + 3.0 * (p - m) - n), atol=1e-3, rtol=1e-4
    )
    assert not torch.allclose(_samples(report, regular), _samples(report, nested))
