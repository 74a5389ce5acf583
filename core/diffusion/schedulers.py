"""ComfyUI's sampler and schedule names, mapped onto diffusers schedulers.

LatentLoom writes no scheduler maths of its own: every sampler is a diffusers scheduler class
with settings chosen so that it follows the sampler of the same name in ComfyUI (which itself
follows k-diffusion, Karras et al. 2022). The tables below are the whole mapping.

Sampler → diffusers class and settings:

==================  ===================================  =========================================
name                class                                settings
==================  ===================================  =========================================
ddim                DDIMScheduler                        eta=0, clip_sample=False,
                                                         set_alpha_to_one=False (SD's convention)
ddpm                DDPMScheduler                        variance_type="fixed_small"
euler               EulerDiscreteScheduler
euler_ancestral     EulerAncestralDiscreteScheduler
heun                HeunDiscreteScheduler
lms                 LMSDiscreteScheduler                 order 4 (diffusers' default)
dpm_2               KDPM2DiscreteScheduler
dpm_2_ancestral     KDPM2AncestralDiscreteScheduler
dpmpp_2m            DPMSolverMultistepScheduler          algorithm_type="dpmsolver++", order 2
dpmpp_2m_sde        DPMSolverMultistepScheduler          algorithm_type="sde-dpmsolver++", order 2
uni_pc              UniPCMultistepScheduler              solver_type="bh1" (ComfyUI's uni_pc),
                                                         final_sigmas_type="sigma_min"
uni_pc_bh2          UniPCMultistepScheduler              solver_type="bh2"
deis                DEISMultistepScheduler               order 3
==================  ===================================  =========================================

Schedule → diffusers settings (T = num_train_timesteps = 1000, N = steps):

- ``normal``: ``timestep_spacing="linspace"``: t = linspace(T−1, 0, N), ComfyUI's normal
  scheduler. (The multistep solvers interpret "linspace" and "leading" over N+1 points and
  drop the last, diffusers' convention for them.) For ddim it is ``"trailing"`` instead,
  because DDIMScheduler always steps by the fixed stride T//N and only strided spacings keep
  its trajectory consistent.
- ``karras``: ``use_karras_sigmas=True`` (Karras et al. 2022, eq. 5, ρ = 7) between the
  model's σ_max and σ_min (taken from a ``linspace`` grid so σ_min is σ(t=0), as in ComfyUI).
- ``exponential``: ``use_exponential_sigmas=True``: σ log-uniform between σ_max and σ_min.
- ``sgm_uniform``: ``timestep_spacing="trailing"``: t = T − 1 − k·T/N, ComfyUI's sgm_uniform
  (ComfyUI interpolates fractional timesteps; diffusers rounds them, a difference under one
  training timestep).
- ``ddim_uniform``: ``timestep_spacing="leading"`` with ``steps_offset=1``: t = 1 + k·(T//N),
  the spacing of the DDIM paper as used by Stable Diffusion and ComfyUI's ddim_uniform.

The noise schedule itself (betas, number of training steps, zero-terminal-SNR rescaling) and the
prediction type come from the model's own scheduler config.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEDULES: tuple[str, ...] = ("normal", "karras", "exponential", "sgm_uniform", "ddim_uniform")
_SPACING_ONLY: tuple[str, ...] = ("normal", "sgm_uniform", "ddim_uniform")

#: How a scheduler's ``sample`` relates to the clean latent x₀ and the noise ε at noise level σ:
#: "sigma" (variance exploding, k-diffusion's x = x₀ + σε) or "alpha" (variance preserving,
#: DDPM's x = √ᾱ·x₀ + √(1−ᾱ)·ε with ᾱ = 1/(1+σ²)).
SampleSpace = Literal["sigma", "alpha"]
#: Where the σ of the current model evaluation is read from (see ``sampling.input_sigma``).
SigmaSource = Literal["alphas_cumprod", "step_index", "kdpm2", "position"]

# Settings of the model's scheduler config that describe the model, not the sampler.
_MODEL_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
    "rescale_betas_zero_snr",
)


@dataclass(frozen=True)
class SamplerDef:
    """One sampler name: its diffusers class, settings and the facts the sampling loop needs."""

    name: str
    class_name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    space: SampleSpace = "sigma"
    sigma_source: SigmaSource = "step_index"
    #: Draws fresh noise every step (ancestral and SDE samplers).
    stochastic: bool = False
    #: Keeps previous model outputs, which cannot cross a node boundary (see ``sampling``).
    multistep: bool = False
    schedules: tuple[str, ...] = SCHEDULES


SAMPLERS: dict[str, SamplerDef] = {
    s.name: s
    for s in (
        SamplerDef(
            "ddim",
            "DDIMScheduler",
            {"clip_sample": False, "set_alpha_to_one": False},
            space="alpha",
            sigma_source="alphas_cumprod",
            schedules=_SPACING_ONLY,
        ),
        SamplerDef(
            "ddpm",
            "DDPMScheduler",
            {"clip_sample": False, "variance_type": "fixed_small"},
            space="alpha",
            sigma_source="alphas_cumprod",
            stochastic=True,
            schedules=_SPACING_ONLY,
        ),
        SamplerDef("euler", "EulerDiscreteScheduler"),
        SamplerDef(
            "euler_ancestral",
            "EulerAncestralDiscreteScheduler",
            stochastic=True,
            schedules=_SPACING_ONLY,
        ),
        SamplerDef("heun", "HeunDiscreteScheduler"),
        SamplerDef("lms", "LMSDiscreteScheduler", multistep=True),
        SamplerDef("dpm_2", "KDPM2DiscreteScheduler", sigma_source="kdpm2"),
        SamplerDef(
            "dpm_2_ancestral",
            "KDPM2AncestralDiscreteScheduler",
            sigma_source="kdpm2",
            stochastic=True,
        ),
        SamplerDef(
            "dpmpp_2m",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "solver_order": 2},
            space="alpha",
            sigma_source="position",
            multistep=True,
        ),
        SamplerDef(
            "dpmpp_2m_sde",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
            space="alpha",
            sigma_source="position",
            stochastic=True,
            multistep=True,
        ),
        SamplerDef(
            "uni_pc",
            "UniPCMultistepScheduler",
            # bh1's last step to σ = 0 divides by zero in diffusers (NaN); like DDIM, it stops
            # at σ_min (t = 0) instead.
            {"solver_type": "bh1", "final_sigmas_type": "sigma_min"},
            space="alpha",
            sigma_source="position",
            multistep=True,
        ),
        SamplerDef(
            "uni_pc_bh2",
            "UniPCMultistepScheduler",
            {"solver_type": "bh2"},
            space="alpha",
            sigma_source="position",
            multistep=True,
        ),
        SamplerDef(
            "deis",
            "DEISMultistepScheduler",
            {"solver_order": 3},
            space="alpha",
            sigma_source="position",
            multistep=True,
        ),
    )
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)


class UnsupportedSamplerError(ValueError):
    """A sampler or schedule name LatentLoom does not know, or a pair that cannot be combined."""


def sampler_def(name: str) -> SamplerDef:
    """The definition of sampler ``name``; a clear error for unknown names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UnsupportedSamplerError(
            f"unknown sampler {name!r}: choose one of {', '.join(SAMPLER_NAMES)}"
        ) from None


def schedule_problem(sampler: str, schedule: str) -> str | None:
    """Why ``sampler`` cannot run with ``schedule``, or None when the pair is supported."""
    if sampler not in SAMPLERS:
        return f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLER_NAMES)}"
    if schedule not in SCHEDULES:
        return f"unknown schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}"
    allowed = SAMPLERS[sampler].schedules
    if schedule not in allowed:
        return (
            f"{sampler} cannot use the {schedule} schedule (its diffusers scheduler only spaces "
            f"timesteps): choose {', '.join(allowed)}"
        )
    return None


def _schedule_settings(sampler: SamplerDef, schedule: str) -> dict[str, Any]:
    if schedule == "normal":
        spacing = "trailing" if sampler.name == "ddim" else "linspace"
        return {"timestep_spacing": spacing, "steps_offset": 0}
    if schedule == "sgm_uniform":
        return {"timestep_spacing": "trailing", "steps_offset": 0}
    if schedule == "ddim_uniform":
        return {"timestep_spacing": "leading", "steps_offset": 1}
    flag = {"karras": "use_karras_sigmas", "exponential": "use_exponential_sigmas"}[schedule]
    return {"timestep_spacing": "linspace", "steps_offset": 0, flag: True}


def scheduler_config(
    sampler: str, schedule: str, model_config: Mapping[str, Any]
) -> tuple[SamplerDef, dict[str, Any]]:
    """The definition of ``sampler`` and the config of its diffusers scheduler for ``schedule``.

    ``model_config`` is the model's scheduler config (``DiffusionModel.scheduler_config``); only
    its noise schedule and prediction type are kept.
    """
    problem = schedule_problem(sampler, schedule)
    if problem is not None:
        raise UnsupportedSamplerError(problem)
    definition = SAMPLERS[sampler]
    config: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
    }
    config.update({k: model_config[k] for k in _MODEL_KEYS if model_config.get(k) is not None})
    config.update(definition.options)
    config.update(_schedule_settings(definition, schedule))
    return definition, config


def make_scheduler(
    sampler: str, schedule: str, model_config: Mapping[str, Any]
) -> tuple[SamplerDef, Any]:
    """A fresh diffusers scheduler for ``sampler`` and ``schedule`` (see the module tables)."""
    import diffusers

    definition, config = scheduler_config(sampler, schedule, model_config)
    scheduler_class = getattr(diffusers, definition.class_name)
    return definition, scheduler_class.from_config(config)
