"""Noise schedule nodes (SIGMAS): ComfyUI's schedulers with their own parameters, and
splitting or flipping a schedule, for the custom samplers of ``nodes.custom_sampling``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.sampling import SCHEDULE_NAMES

_SIGMA_MAX = 14.614642  # SD's highest training noise level, ComfyUI's default
_SIGMA_MIN = 0.0291675  # SD's lowest


def _node_error(exc: ValueError, field: str | None = None) -> Exception:
    from core.engine import NodeError

    return NodeError(str(exc), field=field)


def _levels(model: Any) -> Any:
    from core.diffusion.samplers import NoiseLevels

    return NoiseLevels.from_config(model.scheduler_config)


# --- schedules --------------------------------------------------------------------------------


def _sigmas(make: Callable[[], Any], field: str) -> tuple[Any]:
    try:
        return (make(),)
    except ValueError as exc:
        raise _node_error(exc, field) from None


def _basic_scheduler(ctx: Any, model: Any, scheduler: str, steps: int, denoise: float) -> Any:
    from core.diffusion.custom_sampling import basic_sigmas

    return _sigmas(lambda: basic_sigmas(_levels(model), scheduler, steps, denoise), "scheduler")


def _karras(ctx: Any, steps: int, sigma_max: float, sigma_min: float, rho: float) -> Any:
    from core.diffusion.custom_sampling import karras_sigmas

    return _sigmas(lambda: karras_sigmas(steps, sigma_min, sigma_max, rho), "sigma_min")


def _exponential(ctx: Any, steps: int, sigma_max: float, sigma_min: float) -> Any:
    from core.diffusion.custom_sampling import exponential_sigmas

    return _sigmas(lambda: exponential_sigmas(steps, sigma_min, sigma_max), "sigma_min")


def _polyexponential(ctx: Any, steps: int, sigma_max: float, sigma_min: float, rho: float) -> Any:
    from core.diffusion.custom_sampling import polyexponential_sigmas

    return _sigmas(lambda: polyexponential_sigmas(steps, sigma_min, sigma_max, rho), "sigma_min")


def _vp(ctx: Any, steps: int, beta_d: float, beta_min: float, eps_s: float) -> Any:
    from core.diffusion.custom_sampling import vp_sigmas

    return _sigmas(lambda: vp_sigmas(steps, beta_d, beta_min, eps_s), "eps_s")


def _sd_turbo(ctx: Any, model: Any, steps: int, denoise: float) -> Any:
    from core.diffusion.custom_sampling import sd_turbo_sigmas

    return _sigmas(lambda: sd_turbo_sigmas(_levels(model), steps, denoise), "steps")


def _beta(ctx: Any, model: Any, steps: int, alpha: float, beta: float) -> Any:
    from core.diffusion.samplers.schedules import beta as beta_schedule

    if alpha <= 0 or beta <= 0:
        raise _node_error(ValueError("alpha and beta must be above 0"), "alpha")
    return _sigmas(lambda: beta_schedule(_levels(model), steps, alpha, beta), "alpha")


def _split(ctx: Any, sigmas: Any, step: int) -> tuple[Any, Any]:
    from core.diffusion.custom_sampling import as_sigmas, split_sigmas

    return split_sigmas(as_sigmas(sigmas), step)


def _split_denoise(ctx: Any, sigmas: Any, denoise: float) -> tuple[Any, Any]:
    from core.diffusion.custom_sampling import as_sigmas, split_sigmas_denoise

    return split_sigmas_denoise(as_sigmas(sigmas), denoise)


def _flip(ctx: Any, sigmas: Any) -> tuple[Any]:
    from core.diffusion.custom_sampling import as_sigmas, flip_sigmas

    return (flip_sigmas(as_sigmas(sigmas)),)


# --- specs ---------------------------------------------------------------------------------


def _steps(default: int = 20, maximum: int = 10000) -> WidgetInput:
    return WidgetInput("steps", t.INT, default, min=1, max=maximum, step=1)


def _sigma_range() -> tuple[WidgetInput, WidgetInput]:
    return (
        WidgetInput("sigma_max", t.FLOAT, _SIGMA_MAX, min=0.0, max=5000.0, step=0.01),
        WidgetInput("sigma_min", t.FLOAT, _SIGMA_MIN, min=0.0, max=5000.0, step=0.01),
    )


def _scale(name: str, default: float) -> WidgetInput:
    return WidgetInput(name, t.FLOAT, default, min=0.0, max=100.0, step=0.01)


_MODEL = SocketInput("model", t.MODEL)
_SIGMAS = SocketInput("sigmas", t.SIGMAS)
_SIGMAS_OUT = (Output("SIGMAS", t.SIGMAS),)
_SPLIT_OUT = (Output("high_sigmas", t.SIGMAS), Output("low_sigmas", t.SIGMAS))

SPECS = (
    NodeSpec(
        "BasicScheduler",
        "Basic Scheduler",
        "sampling/custom_sampling/schedulers",
        _basic_scheduler,
        inputs=(
            _MODEL,
            WidgetInput("scheduler", t.COMBO, "normal", choices=SCHEDULE_NAMES),
            _steps(),
            WidgetInput("denoise", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.01),
        ),
        outputs=_SIGMAS_OUT,
        description="The noise levels KSampler would walk for this model, scheduler, steps "
        "and denoise, for Sampler Custom.",
    ),
    NodeSpec(
        "KarrasScheduler",
        "Karras Scheduler",
        "sampling/custom_sampling/schedulers",
        _karras,
        inputs=(_steps(), *_sigma_range(), _scale("rho", 7.0)),
        outputs=_SIGMAS_OUT,
        description="Karras et al.'s schedule between your own highest and lowest noise "
        "levels; a higher rho spends more steps on the nearly clean end.",
    ),
    NodeSpec(
        "ExponentialScheduler",
        "Exponential Scheduler",
        "sampling/custom_sampling/schedulers",
        _exponential,
        inputs=(_steps(), *_sigma_range()),
        outputs=_SIGMAS_OUT,
        description="Noise levels evenly spaced in log σ between your own highest and lowest.",
    ),
    NodeSpec(
        "PolyexponentialScheduler",
        "Polyexponential Scheduler",
        "sampling/custom_sampling/schedulers",
        _polyexponential,
        inputs=(_steps(), *_sigma_range(), _scale("rho", 1.0)),
        outputs=_SIGMAS_OUT,
        description="Like the exponential schedule, bent by rho: above 1 it leaves high "
        "noise sooner and spends more steps near the clean end, below 1 the reverse.",
    ),
    NodeSpec(
        "VPScheduler",
        "VP Scheduler",
        "sampling/custom_sampling/schedulers",
        _vp,
        inputs=(
            _steps(),
            WidgetInput("beta_d", t.FLOAT, 19.9, min=0.0, max=5000.0, step=0.01),
            WidgetInput("beta_min", t.FLOAT, 0.1, min=0.0, max=5000.0, step=0.01),
            WidgetInput("eps_s", t.FLOAT, 0.001, min=0.0, max=1.0, step=0.0001),
        ),
        outputs=_SIGMAS_OUT,
        description="The noise levels of the continuous variance-preserving SDE (Song et "
        "al. 2021).",
    ),
    NodeSpec(
        "SDTurboScheduler",
        "SD Turbo Scheduler",
        "sampling/custom_sampling/schedulers",
        _sd_turbo,
        inputs=(
            _MODEL,
            _steps(1, 10),
            WidgetInput("denoise", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.01),
        ),
        outputs=_SIGMAS_OUT,
        description="The one-to-four-step schedule of SD Turbo and SDXL Turbo (timesteps 999, "
        "899, …); use it with CFG 1 and Euler ancestral.",
    ),
    NodeSpec(
        "BetaSamplingScheduler",
        "Beta Sampling Scheduler",
        "sampling/custom_sampling/schedulers",
        _beta,
        inputs=(
            _MODEL,
            _steps(),
            WidgetInput("alpha", t.FLOAT, 0.6, min=0.0, max=50.0, step=0.01),
            WidgetInput("beta", t.FLOAT, 0.6, min=0.0, max=50.0, step=0.01),
        ),
        outputs=_SIGMAS_OUT,
        description="Timesteps at the quantiles of a Beta(alpha, beta) distribution: with "
        "values below 1, dense at both ends of the schedule.",
    ),
    NodeSpec(
        "SplitSigmas",
        "Split Sigmas",
        "sampling/custom_sampling/sigmas",
        _split,
        inputs=(_SIGMAS, WidgetInput("step", t.INT, 0, min=0, max=10000, step=1)),
        outputs=_SPLIT_OUT,
        description="Cuts a schedule at a step into the first part and the rest (both keep "
        "that step's level), to sample them with different models or samplers.",
    ),
    NodeSpec(
        "SplitSigmasDenoise",
        "Split Sigmas (Denoise)",
        "sampling/custom_sampling/sigmas",
        _split_denoise,
        inputs=(_SIGMAS, WidgetInput("denoise", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.01)),
        outputs=_SPLIT_OUT,
        description="Cuts a schedule so that low_sigmas holds the last denoise × steps "
        "steps, as a denoise below 1 would run.",
    ),
    NodeSpec(
        "FlipSigmas",
        "Flip Sigmas",
        "sampling/custom_sampling/sigmas",
        _flip,
        inputs=(_SIGMAS,),
        outputs=_SIGMAS_OUT,
        description="Reverses a schedule (from clean to noisy), as ComfyUI does for "
        "inversion experiments; LatentLoom's samplers walk only decreasing schedules.",
    ),
)
