"""ComfyUI's sampler and schedule names, and the diffusers schedulers that serve as references.

LatentLoom samples with its own σ-space samplers (``core.diffusion.samplers``): every sampler
works with every schedule. This module keeps the names for node specs and validation, and the
diffusers scheduler each sampler was checked against (tests and benchmarks build them with
``make_scheduler``). Sampler → diffusers class and settings:

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
dpmpp_sde           DPMSolverSDEScheduler
lcm                 LCMScheduler
uni_pc              UniPCMultistepScheduler              solver_type="bh1",
                                                         final_sigmas_type="sigma_min"
uni_pc_bh2          UniPCMultistepScheduler              solver_type="bh2"
deis                DEISMultistepScheduler               order 3
==================  ===================================  =========================================

Schedule → diffusers settings (T = num_train_timesteps = 1000, N = steps): ``normal`` →
``timestep_spacing="linspace"``; ``karras`` → ``use_karras_sigmas=True``; ``exponential`` →
``use_exponential_sigmas=True``; ``sgm_uniform`` → ``"trailing"``; ``ddim_uniform`` →
``"leading"`` with ``steps_offset=1``. The multistep solvers interpret "linspace" over N+1
points and drop the last, so their "normal" is ComfyUI's sgm_uniform; compare them on
explicit levels (tests/sampling does).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.diffusion.samplers import (
    SAMPLER_NAMES,
    SCHEDULE_NAMES,
    UnknownSamplerError,
    sampler_info,
    schedule_function,
)

#: Errors for names LatentLoom does not know (``field`` says which KSampler input).
UnsupportedSamplerError = UnknownSamplerError

#: The schedules a diffusers scheduler can reproduce.
REFERENCE_SCHEDULES: tuple[str, ...] = (
    "normal",
    "karras",
    "exponential",
    "sgm_uniform",
    "ddim_uniform",
)

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
class Reference:
    """The diffusers scheduler a sampler name was checked against, and its settings."""

    class_name: str
    options: Mapping[str, Any] = field(default_factory=dict)


REFERENCES: dict[str, Reference] = {
    "ddim": Reference("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),
    "ddpm": Reference("DDPMScheduler", {"clip_sample": False, "variance_type": "fixed_small"}),
    "euler": Reference("EulerDiscreteScheduler"),
    "euler_ancestral": Reference("EulerAncestralDiscreteScheduler"),
    "heun": Reference("HeunDiscreteScheduler"),
    "lms": Reference("LMSDiscreteScheduler"),
    "dpm_2": Reference("KDPM2DiscreteScheduler"),
    "dpm_2_ancestral": Reference("KDPM2AncestralDiscreteScheduler"),
    "dpmpp_2m": Reference(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}
    ),
    "dpmpp_2m_sde": Reference(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}
    ),
    "dpmpp_sde": Reference("DPMSolverSDEScheduler"),
    "lcm": Reference("LCMScheduler"),
    "uni_pc": Reference(
        "UniPCMultistepScheduler", {"solver_type": "bh1", "final_sigmas_type": "sigma_min"}
    ),
    "uni_pc_bh2": Reference("UniPCMultistepScheduler", {"solver_type": "bh2"}),
    "deis": Reference("DEISMultistepScheduler", {"solver_order": 3}),
}


def schedule_problem(sampler: str, schedule: str) -> str | None:
    """Why a KSampler cannot run ``sampler`` on ``schedule`` (an unknown name), or None.

    Every known sampler works with every known schedule.
    """
    for check, name in ((sampler_info, sampler), (schedule_function, schedule)):
        try:
            check(name)
        except UnknownSamplerError as exc:
            return str(exc)
    return None


def _schedule_settings(sampler: str, schedule: str) -> dict[str, Any]:
    if schedule == "normal":
        spacing = "trailing" if sampler == "ddim" else "linspace"
        return {"timestep_spacing": spacing, "steps_offset": 0}
    if schedule == "sgm_uniform":
        return {"timestep_spacing": "trailing", "steps_offset": 0}
    if schedule == "ddim_uniform":
        return {"timestep_spacing": "leading", "steps_offset": 1}
    flag = {"karras": "use_karras_sigmas", "exponential": "use_exponential_sigmas"}[schedule]
    return {"timestep_spacing": "linspace", "steps_offset": 0, flag: True}


def scheduler_config(
    sampler: str, schedule: str, model_config: Mapping[str, Any]
) -> tuple[Reference, dict[str, Any]]:
    """The reference of ``sampler`` and its diffusers config for ``schedule``.

    ``model_config`` is the model's scheduler config (``DiffusionModel.scheduler_config``); only
    its noise schedule and prediction type are kept.
    """
    if sampler not in REFERENCES:
        raise UnknownSamplerError(
            f"{sampler} has no diffusers reference: choose one of {', '.join(REFERENCES)}",
            "sampler_name",
        )
    if schedule not in REFERENCE_SCHEDULES:
        raise UnknownSamplerError(
            f"diffusers cannot reproduce the {schedule} schedule: choose one of "
            f"{', '.join(REFERENCE_SCHEDULES)}",
            "scheduler",
        )
    reference = REFERENCES[sampler]
    config: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
    }
    config.update({k: model_config[k] for k in _MODEL_KEYS if model_config.get(k) is not None})
    config.update(reference.options)
    config.update(_schedule_settings(sampler, schedule))
    return reference, config


def make_scheduler(
    sampler: str, schedule: str, model_config: Mapping[str, Any]
) -> tuple[Reference, Any]:
    """A fresh diffusers reference scheduler for ``sampler`` and ``schedule``."""
    import diffusers

    reference, config = scheduler_config(sampler, schedule, model_config)
    return reference, getattr(diffusers, reference.class_name).from_config(config)


__all__ = [
    "REFERENCES",
    "REFERENCE_SCHEDULES",
    "SAMPLER_NAMES",
    "SCHEDULE_NAMES",
    "UnsupportedSamplerError",
    "make_scheduler",
    "schedule_problem",
    "scheduler_config",
]
