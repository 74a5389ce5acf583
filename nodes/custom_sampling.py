"""Custom sampling: KSampler taken apart into a sampler, a schedule, a noise source and a
guider, each its own node (ComfyUI's custom-sampling family, with its names and values). The
schedule nodes are in ``nodes.sigmas``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.sampling import SAMPLER_NAMES

_SEED_MAX = 2**64 - 1


def _node_error(exc: ValueError, field: str | None = None) -> Exception:
    from core.engine import NodeError

    return NodeError(str(exc), field=field)


# --- SAMPLER -------------------------------------------------------------------------------


def _choice(name: str, **options: Any) -> tuple[Any]:
    from core.diffusion.custom_sampling import SamplerChoice

    return (SamplerChoice.of(name, **options),)


def _ksampler_select(ctx: Any, sampler_name: str) -> tuple[Any]:
    return _choice(sampler_name)


def _euler_ancestral(ctx: Any, eta: float, s_noise: float) -> tuple[Any]:
    return _choice("euler_ancestral", eta=eta, s_noise=s_noise)


def _dpmpp_2s_ancestral(ctx: Any, eta: float, s_noise: float) -> tuple[Any]:
    return _choice("dpmpp_2s_ancestral", eta=eta, s_noise=s_noise)


def _lms(ctx: Any, order: int) -> tuple[Any]:
    return _choice("lms", order=order)


def _device_name(name: str, noise_device: str) -> str:
    # Noise is drawn on the CPU for every device here, so both names are the same sampler.
    return name if noise_device == "cpu" else f"{name}_gpu"


def _dpmpp_2m_sde(
    ctx: Any, solver_type: str, eta: float, s_noise: float, noise_device: str
) -> tuple[Any]:
    name = _device_name("dpmpp_2m_sde", noise_device)
    return _choice(name, eta=eta, s_noise=s_noise, solver_type=solver_type)


def _dpmpp_3m_sde(ctx: Any, eta: float, s_noise: float, noise_device: str) -> tuple[Any]:
    return _choice(_device_name("dpmpp_3m_sde", noise_device), eta=eta, s_noise=s_noise)


def _dpmpp_sde(ctx: Any, eta: float, s_noise: float, r: float, noise_device: str) -> tuple[Any]:
    return _choice(_device_name("dpmpp_sde", noise_device), eta=eta, s_noise=s_noise, r=r)


# --- NOISE and GUIDER ----------------------------------------------------------------------


def _random_noise(ctx: Any, noise_seed: int) -> tuple[Any]:
    from core.diffusion.custom_sampling import NoiseSource

    return (NoiseSource(noise_seed),)


def _disable_noise(ctx: Any) -> tuple[Any]:
    from core.diffusion.custom_sampling import NoiseSource

    return (NoiseSource(0, enabled=False),)


def _check_widths(model: Any, **conditionings: Any) -> None:
    from core.diffusion.custom_sampling import conditioning_width_problem

    for name, conditioning in conditionings.items():
        problem = conditioning_width_problem(model, conditioning)
        if problem is not None:
            raise _node_error(ValueError(problem), name)


def _basic_guider(ctx: Any, model: Any, conditioning: Any) -> tuple[Any]:
    from core.diffusion.custom_sampling import Guider

    _check_widths(model, conditioning=conditioning)
    return (Guider.basic(model, conditioning),)


def _cfg_guider(ctx: Any, model: Any, positive: Any, negative: Any, cfg: float) -> tuple[Any]:
    from core.diffusion.custom_sampling import Guider

    _check_widths(model, positive=positive, negative=negative)
    return (Guider.cfg(model, positive, negative, cfg),)


def _dual_cfg_guider(
    ctx: Any,
    model: Any,
    cond1: Any,
    cond2: Any,
    negative: Any,
    cfg_conds: float,
    cfg_cond2_negative: float,
    style: str,
) -> tuple[Any]:
    from core.diffusion.custom_sampling import Guider

    _check_widths(model, cond1=cond1, cond2=cond2, negative=negative)
    guider = Guider.dual_cfg(
        model, cond1, cond2, negative, cfg_conds, cfg_cond2_negative, nested=style == "nested"
    )
    return (guider,)


# --- the samplers --------------------------------------------------------------------------


def _sample(
    ctx: Any,
    guider: Any,
    add_noise: bool,
    seed: int,
    noise: Any,
    sampler: Any,
    sigmas: Any,
    latent: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Runs ``sampler`` over ``sigmas`` steered by ``guider``; (output, denoised_output,
    HISTORY), denoised_output being the last step's estimate of the clean latent."""
    from core.diffusion import latents
    from core.diffusion.custom_sampling import as_sigmas, sigmas_problem
    from core.diffusion.previews import StepHistory
    from core.diffusion.sampling import SamplerSettings
    from nodes.sampler_runs import run_sampler
    from nodes.sampling import _fit_to_model

    latent = _fit_to_model(guider.model, latent)
    sigmas = as_sigmas(sigmas)
    if len(sigmas) < 2:  # no step to take (BasicScheduler with denoise 0)
        out = latents.with_samples(latent, latent["samples"].float().clone())
        return out, out, StepHistory(total=0, downscale=latents.downscale_of(latent))
    problem = sigmas_problem(sigmas)
    if problem is not None:
        raise _node_error(ValueError(problem), "sigmas")
    cfg = guider.scales[0] if guider.scales else 1.0
    settings = SamplerSettings(
        sampler.name, "normal", len(sigmas) - 1, cfg, seed, add_noise=add_noise
    )
    out, history, denoised = run_sampler(
        ctx,
        guider.model,
        guider.positive,
        guider.conditionings[0],
        latent,
        settings,
        noise,
        sigmas=sigmas,
        sampler_options=sampler.option_dict(),
        guider=guider,
    )
    return out, latents.with_samples(latent, denoised), history


def _sampler_custom(
    ctx: Any,
    model: Any,
    add_noise: bool,
    noise_seed: int,
    cfg: float,
    positive: Any,
    negative: Any,
    sampler: Any,
    sigmas: Any,
    latent_image: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    from core.diffusion.custom_sampling import Guider

    if cfg == 1.0:
        _check_widths(model, positive=positive)
    else:
        _check_widths(model, positive=positive, negative=negative)
    guider = Guider.cfg(model, positive, negative, cfg)
    return _sample(ctx, guider, add_noise, noise_seed, None, sampler, sigmas, latent_image)


def _sampler_custom_advanced(
    ctx: Any,
    noise: Any,
    guider: Any,
    sampler: Any,
    sigmas: Any,
    latent_image: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    from nodes.sampling import _fit_to_model

    latent_image = _fit_to_model(guider.model, latent_image)
    explicit = noise.generate(latent_image) if noise.enabled else None
    return _sample(ctx, guider, noise.enabled, noise.seed, explicit, sampler, sigmas, latent_image)


def _add_noise(
    ctx: Any, model: Any, noise: Any, sigmas: Any, latent_image: Mapping[str, Any]
) -> tuple[dict[str, Any]]:
    from core.diffusion import latents
    from core.diffusion.custom_sampling import add_noise, as_sigmas
    from nodes.sampling import _fit_to_model

    latent_image = _fit_to_model(model, latent_image)
    samples = latent_image["samples"]
    noisy = add_noise(samples, noise.generate(latent_image), as_sigmas(sigmas))
    return (latents.with_samples(latent_image, noisy),)


# --- specs ---------------------------------------------------------------------------------


def _scale(name: str, default: float = 1.0, description: str = "") -> WidgetInput:
    return WidgetInput(
        name, t.FLOAT, default, min=0.0, max=100.0, step=0.01, description=description
    )


def _cfg(name: str = "cfg") -> WidgetInput:
    return WidgetInput(name, t.FLOAT, 8.0, min=0.0, max=100.0, step=0.1)


_ETA = _scale("eta", description="how much fresh noise each step adds (0: none)")
_S_NOISE = _scale("s_noise", description="scales that fresh noise")
_NOISE_DEVICE = WidgetInput(
    "noise_device",
    t.COMBO,
    "gpu",
    choices=("gpu", "cpu"),
    description="kept for ComfyUI workflows: LatentLoom draws this noise on the CPU either way",
)
_SAMPLER_OUT = (Output("SAMPLER", t.SAMPLER),)
_CUSTOM_OUT = (
    Output("output", t.LATENT),
    Output(
        "denoised_output",
        t.LATENT,
        description="the model's estimate of the clean latent at the last step",
    ),
    Output(
        "HISTORY",
        t.HISTORY,
        description="every step's latent and denoised estimate: scrub it, or continue from a "
        "step with Latent From History",
    ),
)
_MODEL = SocketInput("model", t.MODEL)
_SIGMAS = SocketInput("sigmas", t.SIGMAS)
_LATENT = SocketInput("latent_image", t.LATENT)

SAMPLER_SPECS = (
    NodeSpec(
        "KSamplerSelect",
        "KSampler Select",
        "sampling/custom_sampling/samplers",
        _ksampler_select,
        inputs=(WidgetInput("sampler_name", t.COMBO, "euler", choices=SAMPLER_NAMES),),
        outputs=_SAMPLER_OUT,
        description="Picks a sampler by name for Sampler Custom, with its usual settings.",
    ),
    NodeSpec(
        "SamplerEulerAncestral",
        "Sampler Euler Ancestral",
        "sampling/custom_sampling/samplers",
        _euler_ancestral,
        inputs=(_ETA, _S_NOISE),
        outputs=_SAMPLER_OUT,
        description="Euler ancestral with its noise settings: eta 0 makes it plain Euler, "
        "lower values keep more of the picture from step to step.",
    ),
    NodeSpec(
        "SamplerDPMPP_2S_Ancestral",
        "Sampler DPM++ 2S Ancestral",
        "sampling/custom_sampling/samplers",
        _dpmpp_2s_ancestral,
        inputs=(_ETA, _S_NOISE),
        outputs=_SAMPLER_OUT,
        description="DPM++ 2S ancestral with its noise settings (eta 0: no fresh noise).",
    ),
    NodeSpec(
        "SamplerLMS",
        "Sampler LMS",
        "sampling/custom_sampling/samplers",
        _lms,
        inputs=(WidgetInput("order", t.INT, 4, min=1, max=100, step=1),),
        outputs=_SAMPLER_OUT,
        description="Linear multistep with a chosen order: how many earlier steps each step "
        "reuses (higher is smoother but can overshoot on few steps).",
    ),
    NodeSpec(
        "SamplerDPMPP_2M_SDE",
        "Sampler DPM++ 2M SDE",
        "sampling/custom_sampling/samplers",
        _dpmpp_2m_sde,
        inputs=(
            WidgetInput("solver_type", t.COMBO, "midpoint", choices=("midpoint", "heun")),
            _ETA,
            _S_NOISE,
            _NOISE_DEVICE,
        ),
        outputs=_SAMPLER_OUT,
        description="DPM++ 2M SDE with its solver and noise settings.",
    ),
    NodeSpec(
        "SamplerDPMPP_3M_SDE",
        "Sampler DPM++ 3M SDE",
        "sampling/custom_sampling/samplers",
        _dpmpp_3m_sde,
        inputs=(_ETA, _S_NOISE, _NOISE_DEVICE),
        outputs=_SAMPLER_OUT,
        description="DPM++ 3M SDE with its noise settings.",
    ),
    NodeSpec(
        "SamplerDPMPP_SDE",
        "Sampler DPM++ SDE",
        "sampling/custom_sampling/samplers",
        _dpmpp_sde,
        inputs=(
            _ETA,
            _S_NOISE,
            _scale("r", 0.5, "where in each step the middle evaluation sits (0.5: halfway)"),
            _NOISE_DEVICE,
        ),
        outputs=_SAMPLER_OUT,
        description="DPM++ SDE with its noise settings and sub-step position.",
    ),
)

SPECS = (
    *SAMPLER_SPECS,
    NodeSpec(
        "RandomNoise",
        "Random Noise",
        "sampling/custom_sampling/noise",
        _random_noise,
        inputs=(
            WidgetInput(
                "noise_seed", t.INT, 0, min=0, max=_SEED_MAX, step=1, control_after_run=True
            ),
        ),
        outputs=(Output("NOISE", t.NOISE),),
        description="Initial noise from a seed (per batch item, following the latent's batch "
        "index), for Sampler Custom Advanced.",
    ),
    NodeSpec(
        "DisableNoise",
        "Disable Noise",
        "sampling/custom_sampling/noise",
        _disable_noise,
        outputs=(Output("NOISE", t.NOISE),),
        description="No initial noise: for a latent that is noisy already (the second half "
        "of a split schedule).",
    ),
    NodeSpec(
        "BasicGuider",
        "Basic Guider",
        "sampling/custom_sampling/guiders",
        _basic_guider,
        inputs=(_MODEL, SocketInput("conditioning", t.CONDITIONING)),
        outputs=(Output("GUIDER", t.GUIDER),),
        description="Steers the model with one conditioning and no negative (CFG 1): for "
        "distilled models such as Turbo or Lightning.",
    ),
    NodeSpec(
        "CFGGuider",
        "CFG Guider",
        "sampling/custom_sampling/guiders",
        _cfg_guider,
        inputs=(
            _MODEL,
            SocketInput("positive", t.CONDITIONING),
            SocketInput("negative", t.CONDITIONING),
            _cfg(),
        ),
        outputs=(Output("GUIDER", t.GUIDER),),
        description="Steers the model towards the positive and away from the negative prompt "
        "(classifier-free guidance with scale cfg), as KSampler does.",
    ),
    NodeSpec(
        "DualCFGGuider",
        "Dual CFG Guider",
        "sampling/custom_sampling/guiders",
        _dual_cfg_guider,
        inputs=(
            _MODEL,
            SocketInput("cond1", t.CONDITIONING),
            SocketInput("cond2", t.CONDITIONING),
            SocketInput("negative", t.CONDITIONING),
            _cfg("cfg_conds"),
            _cfg("cfg_cond2_negative"),
            WidgetInput("style", t.COMBO, "regular", choices=("regular", "nested")),
        ),
        outputs=(Output("GUIDER", t.GUIDER),),
        description="Guidance by two prompts: cond2 away from the negative with "
        "cfg_cond2_negative, and cond1 away from cond2 with cfg_conds (nested: the second "
        "guidance scaled by the first).",
    ),
    NodeSpec(
        "SamplerCustom",
        "Sampler Custom",
        "sampling/custom_sampling",
        _sampler_custom,
        inputs=(
            _MODEL,
            WidgetInput("add_noise", t.BOOLEAN, True),
            WidgetInput(
                "noise_seed", t.INT, 0, min=0, max=_SEED_MAX, step=1, control_after_run=True
            ),
            _cfg(),
            SocketInput("positive", t.CONDITIONING),
            SocketInput("negative", t.CONDITIONING),
            SocketInput("sampler", t.SAMPLER),
            _SIGMAS,
            _LATENT,
        ),
        outputs=_CUSTOM_OUT,
        description="KSampler with the sampler and the noise levels as inputs: any schedule "
        "node (Karras with your own range, SD Turbo's few steps, a split schedule) with any "
        "sampler node.",
    ),
    NodeSpec(
        "SamplerCustomAdvanced",
        "Sampler Custom Advanced",
        "sampling/custom_sampling",
        _sampler_custom_advanced,
        inputs=(
            SocketInput("noise", t.NOISE),
            SocketInput("guider", t.GUIDER),
            SocketInput("sampler", t.SAMPLER),
            _SIGMAS,
            _LATENT,
        ),
        outputs=_CUSTOM_OUT,
        description="Samples with every part from its own node: the initial noise, the guider "
        "(model, prompts and guidance), the sampler and the noise levels.",
    ),
    NodeSpec(
        "AddNoise",
        "Add Noise",
        "sampling/custom_sampling/noise",
        _add_noise,
        inputs=(_MODEL, SocketInput("noise", t.NOISE), _SIGMAS, _LATENT),
        outputs=(Output("LATENT", t.LATENT),),
        description="Adds noise to a latent at the level a schedule spans (first minus last "
        "σ), so that a sampler with Disable Noise can start from it.",
    ),
)
