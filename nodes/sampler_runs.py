"""One sampler run as a node sees it: live previews, progress, the step history, the initial
noise of a batch, and errors pinned to the node's inputs. Shared by KSampler and the custom
sampling nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.placement import place


def run_sampler(
    ctx: Any,
    model: Any,
    positive: Any,
    negative: Any,
    latent: Mapping[str, Any],
    settings: Any,
    noise: Any = None,
    *,
    sigmas: Any = None,
    sampler_options: Mapping[str, Any] | None = None,
    guider: Any = None,
) -> tuple[dict[str, Any], Any, Any]:
    """Samples, showing the projected x̂₀ after every step and keeping every step's x_t and
    x̂₀ in the returned history; returns (LATENT, HISTORY, the last step's x̂₀ or None).

    ``noise`` (a tensor) replaces the seed's noise, which otherwise follows the latent's
    ``batch_index``; ``sigmas``, ``sampler_options`` and ``guider`` go to ``sampling.sample``.
    A conditioning whose width does not fit the model is an error on its input."""
    import torch

    from core.diffusion import devices, latents, sampling
    from core.diffusion.custom_sampling import batch_noise, conditioning_width_problem
    from core.diffusion.previews import StepHistory, StepPreview
    from core.diffusion.samplers import UnknownSamplerError
    from core.engine import NodeError

    guided = (positive, negative) if settings.cfg != 1.0 else (positive,)
    for name, conditioning in zip(("positive", "negative"), guided, strict=False):
        problem = conditioning_width_problem(model, conditioning)
        if problem is not None:
            raise NodeError(problem, field=name)
    place(ctx, model.unet)
    projection = model.preview
    history = StepHistory(settings.steps, latents.downscale_of(latent), projection)
    # With a VAE preview every k steps, only those steps (and the last) show a picture: mixing
    # them with the blurrier projection in between would make the preview flicker.
    every = max(0, ctx.preview_vae_every)
    preview_vae = model.preview_vae if every else None
    if preview_vae is not None:
        place(ctx, preview_vae.vae)
    last: list[Any] = [None]

    def report(step: sampling.SamplerStep) -> None:
        at = settings.start_step + step.step  # the step's index in the whole schedule
        history.append(at, step.latent, step.denoised)
        last[0] = step.denoised
        if preview_vae is None:
            ctx.preview(StepPreview(at, settings.steps, projection.project(step.denoised)))
        elif step.step % every == 0 or step.step == step.total:
            from core.diffusion import vae_ops

            picture = vae_ops.decode(preview_vae, step.denoised)
            ctx.preview(StepPreview(at, settings.steps, picture, source="vae"))
        ctx.progress(step.step, step.total)

    notices: list[str] = []
    try:
        if noise is None and "batch_index" in latent:
            noise = batch_noise(settings.seed, latent["samples"].shape, latent["batch_index"])
        unet_device = next(model.unet.parameters()).device
        with devices.cpu_threads(latent["samples"].shape, unet_device):
            samples = sampling.sample(
                model,
                positive,
                negative,
                latent["samples"],
                settings,
                noise_mask=latent.get("noise_mask"),
                noise=noise,
                callback=report,
                check_cancel=ctx.cancel.raise_if_cancelled,
                downscale=latents.downscale_of(latent),
                sigmas=sigmas,
                sampler_options=sampler_options,
                guider=guider,
                notices=notices,
            )
    except UnknownSamplerError as exc:
        raise NodeError(str(exc), field=exc.field) from None
    except ValueError as exc:
        raise NodeError(str(exc)) from None
    for notice in notices:  # a ControlNet hint resized to the picture…
        ctx.record("notice", notice)
    # Recorded too, so the editor (which sees records, cached runs included) can scrub it.
    ctx.record("history", history)
    denoised = None if last[0] is None else last[0].detach().to("cpu", torch.float32)
    return latents.with_samples(latent, samples), history, denoised
