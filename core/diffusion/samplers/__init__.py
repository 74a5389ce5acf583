"""Samplers in σ-space and noise schedules, each a plain function, and their registries.

Any sampler runs on any schedule: a schedule makes the σ levels (``schedules.SCHEDULES``,
``name → schedule(levels, steps)``), a sampler walks them (``SAMPLERS``, ``name →
SamplerInfo``, whose ``function`` has ``common.Sampler``'s signature). The names are
ComfyUI's, so its workflows and custom-sampling graphs ask for the same things here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from core.diffusion.samplers import multistep, singlestep, unipc
from core.diffusion.samplers.common import Sampler, StepInfo, ancestral_step
from core.diffusion.samplers.noise import BrownianNoise, StepNoise, step_seed
from core.diffusion.samplers.schedules import SCHEDULES, NoiseLevels, Schedule

#: What noise a sampler draws: none, independent noise per step, or one Brownian path.
NoiseKind = Literal["none", "step", "brownian"]


@dataclass(frozen=True)
class SamplerInfo:
    """One sampler name: its function and the facts a caller needs about it."""

    name: str
    function: Sampler
    noise: NoiseKind = "none"
    #: Reuses earlier steps' model outputs, which a run split across nodes cannot carry over.
    multistep: bool = False
    #: KSampler computes steps + 1 levels and drops the second-to-last (ComfyUI's rule for
    #: these: their last step, an Euler step to 0, then starts from a lower noise level).
    discard_penultimate_sigma: bool = False
    #: The sampler this name is another name for (ComfyUI's ``_gpu`` variants).
    alias_of: str | None = None

    @property
    def stochastic(self) -> bool:
        return self.noise != "none"


def _aliases(infos: list[SamplerInfo]) -> list[SamplerInfo]:
    out: list[SamplerInfo] = []
    for info in infos:
        out.append(info)
        if info.noise == "brownian":
            # ComfyUI draws these on the GPU; here all noise is drawn on the CPU, so the same
            # seed gives the same picture on every device and the names are the same sampler.
            out.append(
                SamplerInfo(
                    f"{info.name}_gpu",
                    info.function,
                    info.noise,
                    info.multistep,
                    info.discard_penultimate_sigma,
                    alias_of=info.name,
                )
            )
    return out


#: Every sampler by its ComfyUI name, in ComfyUI's order.
SAMPLERS: dict[str, SamplerInfo] = {
    info.name: info
    for info in _aliases(
        [
            SamplerInfo("euler", singlestep.sample_euler),
            SamplerInfo("euler_ancestral", singlestep.sample_euler_ancestral, "step"),
            SamplerInfo("heun", singlestep.sample_heun),
            SamplerInfo("dpm_2", singlestep.sample_dpm_2, discard_penultimate_sigma=True),
            SamplerInfo(
                "dpm_2_ancestral",
                singlestep.sample_dpm_2_ancestral,
                "step",
                discard_penultimate_sigma=True,
            ),
            SamplerInfo("lms", multistep.sample_lms, multistep=True),
            SamplerInfo("dpmpp_2s_ancestral", singlestep.sample_dpmpp_2s_ancestral, "step"),
            SamplerInfo("dpmpp_sde", singlestep.sample_dpmpp_sde, "brownian"),
            SamplerInfo("dpmpp_2m", multistep.sample_dpmpp_2m, multistep=True),
            SamplerInfo("dpmpp_2m_sde", multistep.sample_dpmpp_2m_sde, "brownian", True),
            SamplerInfo("dpmpp_3m_sde", multistep.sample_dpmpp_3m_sde, "brownian", True),
            SamplerInfo("ddpm", singlestep.sample_ddpm, "step"),
            SamplerInfo("lcm", singlestep.sample_lcm, "step"),
            SamplerInfo("ipndm", multistep.sample_ipndm, multistep=True),
            SamplerInfo("deis", multistep.sample_deis, multistep=True),
            SamplerInfo("res_multistep", multistep.sample_res_multistep, multistep=True),
            # DDIM (η = 0) is Euler's method in σ-space (Karras et al. 2022, §3), as in ComfyUI.
            SamplerInfo("ddim", singlestep.sample_euler),
            SamplerInfo(
                "uni_pc", unipc.sample_uni_pc, multistep=True, discard_penultimate_sigma=True
            ),
            SamplerInfo(
                "uni_pc_bh2",
                unipc.sample_uni_pc_bh2,
                multistep=True,
                discard_penultimate_sigma=True,
            ),
        ]
    )
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
SCHEDULE_NAMES: tuple[str, ...] = tuple(SCHEDULES)


class UnknownSamplerError(ValueError):
    """A sampler or schedule name LatentLoom does not know; ``field`` is the KSampler input
    that named it (``sampler_name`` or ``scheduler``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def sampler_info(name: str) -> SamplerInfo:
    """The sampler called ``name``; a clear error for unknown names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UnknownSamplerError(
            f"unknown sampler {name!r}: choose one of {', '.join(SAMPLER_NAMES)}", "sampler_name"
        ) from None


def schedule_function(name: str) -> Schedule:
    """The schedule called ``name``; a clear error for unknown names."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise UnknownSamplerError(
            f"unknown scheduler {name!r}: choose one of {', '.join(SCHEDULE_NAMES)}", "scheduler"
        ) from None


def make_sigmas(name: str, levels: NoiseLevels, steps: int) -> torch.Tensor:
    """The ``steps + 1`` σ levels of schedule ``name`` for a model with ``levels``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return schedule_function(name)(levels, steps)


__all__ = [
    "SAMPLERS",
    "SAMPLER_NAMES",
    "SCHEDULES",
    "SCHEDULE_NAMES",
    "BrownianNoise",
    "NoiseLevels",
    "Sampler",
    "SamplerInfo",
    "StepInfo",
    "StepNoise",
    "UnknownSamplerError",
    "ancestral_step",
    "make_sigmas",
    "sampler_info",
    "schedule_function",
    "step_seed",
]
