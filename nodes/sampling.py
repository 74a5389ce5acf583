"""The samplers: KSampler and KSampler (Advanced), over ``core.diffusion.sampling``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

# The names are data (for the palette and validation, without importing torch); keep them in
# step with core.diffusion.samplers, which tests/sampling checks. Every sampler works with
# every schedule.
SAMPLER_NAMES: tuple[str, ...] = (
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "res_multistep",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
)
SCHEDULE_NAMES: tuple[str, ...] = (
    "normal",
    "karras",
    "exponential",
    "sgm_uniform",
    "simple",
    "ddim_uniform",
    "beta",
    "linear_quadratic",
    "kl_optimal",
)
_SEED_MAX = 2**64 - 1


def _run(
    ctx: Any,
    model: Any,
    positive: Any,
    negative: Any,
    latent: Mapping[str, Any],
    settings: Any,
    noise: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], Any]:
    """Samples with the live preview and the step history (``nodes.sampler_runs``)."""
    from nodes.sampler_runs import run_sampler

    explicit = None if noise is None else noise["samples"]
    out, history, _ = run_sampler(ctx, model, positive, negative, latent, settings, explicit)
    return out, history


def _fit_to_model(model: Any, latent: Mapping[str, Any]) -> Mapping[str, Any]:
    """An untouched Empty Latent Image made for another VAE factor (ComfyUI's node assumes 8
    pixels per cell) is remade for this model's VAE, so the picture has the asked-for size."""
    from core.diffusion import latents, vae_ops
    from core.engine import NodeError

    if model.preview_vae is None:
        return latent
    try:
        return latents.fit_empty(latent, vae_ops.latent_factor(model.preview_vae))
    except ValueError as exc:
        raise NodeError(str(exc), field="latent_image") from None


def _ksampler(
    ctx: Any,
    model: Any,
    positive: Any,
    negative: Any,
    latent_image: Mapping[str, Any],
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    denoise: float,
    noise: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    from core.diffusion.sampling import SamplerSettings, denoise_window

    latent_image = _fit_to_model(model, latent_image)
    window = denoise_window(steps, denoise)
    if window is None:
        from core.diffusion.latents import downscale_of
        from core.diffusion.previews import StepHistory

        return dict(latent_image), StepHistory(total=0, downscale=downscale_of(latent_image))
    total, start = window
    settings = SamplerSettings(sampler_name, scheduler, total, cfg, seed, start_step=start)
    return _run(ctx, model, positive, negative, latent_image, settings, noise)


def _ksampler_advanced(
    ctx: Any,
    model: Any,
    positive: Any,
    negative: Any,
    latent_image: Mapping[str, Any],
    add_noise: bool,
    noise_seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    start_at_step: int,
    end_at_step: int,
    return_with_leftover_noise: bool,
    noise: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    from core.diffusion.sampling import SamplerSettings

    latent_image = _fit_to_model(model, latent_image)
    settings = SamplerSettings(
        sampler_name,
        scheduler,
        steps,
        cfg,
        noise_seed,
        start_step=start_at_step,
        end_step=end_at_step,
        add_noise=add_noise,
        leftover_noise=return_with_leftover_noise,
    )
    return _run(ctx, model, positive, negative, latent_image, settings, noise)


def _guidance_interval(ctx: Any, model: Any, sigma_low: float, sigma_high: float) -> Any:
    from core.engine import NodeError

    try:
        return model.with_guidance_interval(sigma_low, sigma_high)
    except ValueError as exc:
        raise NodeError(str(exc), field="sigma_low") from None


def _interval_problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    from core.diffusion.guidance_interval import guidance_interval_problem

    low, high = params.get("sigma_low"), params.get("sigma_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        problem = guidance_interval_problem(low, high)
        if problem is not None:
            yield "sigma_low", problem


# ModelSamplingDiscrete's choices, in ComfyUI's order, and the prediction type each reads the
# UNet's output as (LCM: ε, with the consistency boundary condition on 50 distilled levels).
MODEL_SAMPLINGS: tuple[str, ...] = ("eps", "v_prediction", "lcm", "x0")
_PREDICTIONS = {"eps": "epsilon", "v_prediction": "v_prediction", "lcm": "epsilon", "x0": "sample"}
#: The timesteps an LCM was distilled on (Luo et al. 2023: 50 of the 1000).
LCM_ORIGINAL_STEPS = 50
# ModelSamplingContinuousEDM's choices: ComfyUI's for SD-family UNets (its Playground v2.5
# choice needs that model's own latent format, which LatentLoom does not have).
EDM_SAMPLINGS: tuple[str, ...] = ("v_prediction", "edm", "edm_playground_v2.5", "eps")
_EDM_PREDICTIONS = {"v_prediction": "v_prediction", "edm": "edm", "eps": "epsilon"}
_PLAYGROUND_UNSUPPORTED = (
    "edm_playground_v2.5 needs Playground v2.5's own latent format, which LatentLoom does not "
    "have: use v_prediction, edm or eps"
)


def _model_sampling_discrete(ctx: Any, model: Any, sampling: str, zsnr: bool) -> Any:
    from core.diffusion.families import PredictionType

    prediction = PredictionType(_PREDICTIONS[sampling])
    if sampling == "lcm":
        return model.with_model_sampling(
            prediction,
            bool(zsnr),
            model_sampling="lcm",
            original_inference_steps=LCM_ORIGINAL_STEPS,
        )
    return model.with_model_sampling(prediction, bool(zsnr))


def _model_sampling_edm(
    ctx: Any, model: Any, sampling: str, sigma_max: float, sigma_min: float
) -> Any:
    from core.diffusion.families import PredictionType
    from core.engine import NodeError

    problem = next(
        iter(_edm_problems({"sampling": sampling, "sigma_max": sigma_max, "sigma_min": sigma_min})),
        None,
    )
    if problem is not None:
        raise NodeError(problem[1], field=problem[0])
    return model.with_model_sampling(
        PredictionType(_EDM_PREDICTIONS[sampling]),
        model_sampling="edm",
        sigma_min=float(sigma_min),
        sigma_max=float(sigma_max),
    )


#: The rectified-flow families whose noise levels ModelSamplingAuraFlow and ModelSamplingSD3
#: shift (σ' = s·σ / (1 + (s − 1)·σ), Esser et al. 2024, §5.3.2).
FLOW_FAMILIES = "AuraFlow, SD3, Lumina 2, Z-Image and Qwen-Image"
_FAMILY_NAMES = {"sd1": "an SD 1.x", "sd2": "an SD 2.x", "sdxl": "an SDXL"}


def _model_sampling_flow(node: str) -> Any:
    """ComfyUI's shift for rectified-flow models. Every MODEL LatentLoom loads is a
    discrete-time SD UNet, on which flow-matching noise levels would sample noise: the node
    stops the run and says so rather than pass the model on unchanged."""

    def patch(ctx: Any, model: Any, shift: float) -> Any:
        from core.engine import NodeError

        family = str(getattr(model, "family", ""))
        which = _FAMILY_NAMES.get(family, "a Stable Diffusion")
        raise NodeError(
            f"{node} (shift {shift:g}) sets the noise levels of rectified-flow models "
            f"({FLOW_FAMILIES}), but its model is {which} UNet, a discrete-time model for "
            f"which they are wrong, and LatentLoom loads no flow model. Bypass or remove this "
            f"node."
        )

    return patch


def _edm_problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if params.get("sampling") == "edm_playground_v2.5":
        yield "sampling", _PLAYGROUND_UNSUPPORTED
    low, high = params.get("sigma_min"), params.get("sigma_max")
    if isinstance(low, (int, float)) and low <= 0:
        yield "sigma_min", f"sigma_min must be above 0, got {low:g}"
    elif isinstance(low, (int, float)) and isinstance(high, (int, float)) and low >= high:
        yield "sigma_max", f"sigma_max ({high:g}) must be above sigma_min ({low:g}): swap them"


_MODEL_INPUTS = (
    SocketInput("model", t.MODEL, description="the diffusion model (UNet) that denoises"),
    SocketInput("positive", t.CONDITIONING, description="the prompt to follow (CLIP Text Encode)"),
    SocketInput(
        "negative",
        t.CONDITIONING,
        description="the prompt to steer away from; an empty prompt is the usual choice",
    ),
    SocketInput(
        "latent_image",
        t.LATENT,
        description="where sampling starts: Empty Latent Image for text-to-image, an "
        "encoded picture for image-to-image",
    ),
)
_NOISE_INPUT = SocketInput(
    "noise",
    t.LATENT,
    optional=True,
    description="explicit initial noise (Latent Noise); replaces the seed's noise",
)


_SAMPLER_OUTPUTS = (
    Output("LATENT", t.LATENT, description="the denoised latent: decode it with VAE Decode"),
    Output(
        "HISTORY",
        t.HISTORY,
        description="every step's latent and denoised estimate: scrub it, or continue from a "
        "step with Latent From History",
    ),
)


def _sampling_widgets(seed_name: str) -> tuple[WidgetInput, ...]:
    return (
        WidgetInput(
            seed_name,
            t.INT,
            0,
            min=0,
            max=_SEED_MAX,
            step=1,
            control_after_run=True,
            description="the starting noise: the same seed and settings give the same picture",
        ),
        WidgetInput(
            "steps",
            t.INT,
            20,
            min=1,
            max=10000,
            step=1,
            description="denoising steps: more is slower and usually cleaner",
        ),
        WidgetInput(
            "cfg",
            t.FLOAT,
            8.0,
            min=0.0,
            max=100.0,
            step=0.1,
            description="guidance scale: how strongly to follow the prompt (1: no guidance; "
            "high values oversaturate)",
        ),
        WidgetInput(
            "sampler_name",
            t.COMBO,
            "euler",
            choices=SAMPLER_NAMES,
            description="the sampling method; names ending in 'ancestral' or 'sde' add fresh "
            "noise at every step",
        ),
        WidgetInput(
            "scheduler",
            t.COMBO,
            "normal",
            choices=SCHEDULE_NAMES,
            description="how the noise levels are spaced over the steps",
        ),
    )


SPECS = (
    NodeSpec(
        "KSampler",
        "KSampler",
        "sampling",
        _ksampler,
        inputs=(
            *_MODEL_INPUTS,
            *_sampling_widgets("seed"),
            WidgetInput(
                "denoise",
                t.FLOAT,
                1.0,
                min=0.0,
                max=1.0,
                step=0.01,
                description="below 1: image-to-image, keeping that much of the input",
            ),
            _NOISE_INPUT,
        ),
        outputs=_SAMPLER_OUTPUTS,
        description="Denoises a latent with the model, guided by the prompts (classifier-free "
        "guidance). Denoise below 1 starts from the input latent: image-to-image.",
    ),
    NodeSpec(
        "KSamplerAdvanced",
        "KSampler (Advanced)",
        "sampling",
        _ksampler_advanced,
        inputs=(
            *_MODEL_INPUTS,
            WidgetInput("add_noise", t.BOOLEAN, True),
            *_sampling_widgets("noise_seed"),
            WidgetInput("start_at_step", t.INT, 0, min=0, max=10000, step=1),
            WidgetInput("end_at_step", t.INT, 10000, min=0, max=10000, step=1),
            WidgetInput("return_with_leftover_noise", t.BOOLEAN, False),
            _NOISE_INPUT,
        ),
        outputs=_SAMPLER_OUTPUTS,
        description="Runs only steps start..end of the schedule, so sampling can be split "
        "across nodes (the half-denoised latent between them is cached like any output).",
    ),
    NodeSpec(
        "GuidanceInterval",
        "Guidance Interval",
        "sampling",
        _guidance_interval,
        inputs=(
            SocketInput("model", t.MODEL),
            WidgetInput(
                "sigma_low",
                t.FLOAT,
                1.1,
                min=0.0,
                max=1000.0,
                step=0.01,
                description="no guidance at or below this noise level: the last, nearly clean "
                "steps, where guidance only roughens outlines",
            ),
            WidgetInput(
                "sigma_high",
                t.FLOAT,
                1000.0,
                min=0.0,
                max=1000.0,
                step=0.01,
                description="no guidance above this noise level (the first steps; SD 1.x starts "
                "at σ ≈ 14.6); 1000: guide from the start",
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Applies classifier-free guidance only to steps whose noise level σ lies in "
        "(sigma_low, sigma_high] (Kynkäänniemi et al. 2024); the other steps use the positive "
        "prompt alone and cost one UNet pass instead of two. Use it to keep guidance where it "
        "decides what is drawn and drop it in the last, nearly clean steps, where it only "
        "exaggerates detail; it also makes those steps faster.",
        check=_interval_problems,
    ),
    NodeSpec(
        "ModelSamplingDiscrete",
        "ModelSamplingDiscrete",
        "advanced/model",
        _model_sampling_discrete,
        inputs=(
            SocketInput("model", t.MODEL),
            WidgetInput(
                "sampling",
                t.COMBO,
                "eps",
                choices=MODEL_SAMPLINGS,
                description="what the UNet predicts: the noise (eps), the velocity "
                "(v_prediction), the clean image (x0), or lcm for latent consistency models "
                "and LoRAs (eps with the consistency boundary condition, 50 distilled levels)",
            ),
            WidgetInput(
                "zsnr",
                t.BOOLEAN,
                False,
                description="zero terminal SNR: rescale the noise levels so the last is pure "
                "noise (for models trained that way)",
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Samples the model as predicting another quantity than its checkpoint "
        "says (eps, v_prediction or x0), optionally on zero-terminal-SNR noise levels "
        "(Lin et al. 2024), or as a latent consistency model (lcm: use it after an LCM LoRA, "
        "with the lcm sampler, 4 to 8 steps and cfg 1 to 2); the input model is left as it "
        "is and the weights are shared.",
    ),
    NodeSpec(
        "ModelSamplingContinuousEDM",
        "ModelSamplingContinuousEDM",
        "advanced/model",
        _model_sampling_edm,
        inputs=(
            SocketInput("model", t.MODEL),
            WidgetInput(
                "sampling",
                t.COMBO,
                "v_prediction",
                choices=EDM_SAMPLINGS,
                description="what the UNet predicts: the velocity (v_prediction), EDM's "
                "preconditioned output (edm) or the noise (eps)",
            ),
            WidgetInput(
                "sigma_max",
                t.FLOAT,
                120.0,
                min=0.0,
                max=1000.0,
                step=0.001,
                description="the highest noise level the model was trained on",
            ),
            WidgetInput(
                "sigma_min",
                t.FLOAT,
                0.002,
                min=0.0,
                max=1000.0,
                step=0.001,
                description="the lowest noise level the model was trained on",
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Samples the model as a continuous-time one (Karras et al. 2022, EDM): "
        "noise levels anywhere between sigma_min and sigma_max, the UNet told ¼·ln σ as its "
        "timestep. Use it for models trained that way, such as CosXL (v_prediction, 0.002 to "
        "120); the input model is left as it is and the weights are shared.",
        check=_edm_problems,
    ),
    *(
        NodeSpec(
            type_id,
            type_id,
            "advanced/model",
            _model_sampling_flow(type_id),
            inputs=(
                SocketInput("model", t.MODEL),
                WidgetInput(
                    "shift",
                    t.FLOAT,
                    default,
                    min=0.0,
                    max=100.0,
                    step=0.01,
                    description="how far the noise levels are moved towards pure noise "
                    "(1: not at all)",
                ),
            ),
            outputs=(Output("MODEL", t.MODEL),),
            description=f"Shifts the noise levels of a rectified-flow model ({FLOW_FAMILIES}) "
            f"towards pure noise, as {type_id} does in ComfyUI; its templates for those "
            "families open and validate with it. LatentLoom loads no flow model, so running "
            "it on an SD 1.x, SD 2.x or SDXL model stops with an error: bypass it for those.",
        )
        for type_id, default in (("ModelSamplingAuraFlow", 1.73), ("ModelSamplingSD3", 3.0))
    ),
)
