"""ComfyUI's samplers, custom-sampling parts and schedules, as LatentLoom maps them."""

from __future__ import annotations

from nodes.interop.comfyui.type_mapping import TypeMapping, entry

SAMPLING_MAPPINGS: tuple[TypeMapping, ...] = (
    # sampling
    entry(
        "KSampler",
        widgets=("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
        seeds=("seed",),
        outputs=("LATENT",),
        title="KSampler",
    ),
    entry(
        "KSamplerAdvanced",
        widgets=(
            "add_noise",
            "noise_seed",
            "steps",
            "cfg",
            "sampler_name",
            "scheduler",
            "start_at_step",
            "end_at_step",
            "return_with_leftover_noise",
        ),
        seeds=("noise_seed",),
        outputs=("LATENT",),
        title="KSampler (Advanced)",
    ),
    # custom sampling (nodes.custom_sampling, nodes.sigmas)
    entry("KSamplerSelect", widgets=("sampler_name",), title="KSamplerSelect"),
    entry("SamplerEulerAncestral", widgets=("eta", "s_noise"), title="SamplerEulerAncestral"),
    entry(
        "SamplerDPMPP_2S_Ancestral", widgets=("eta", "s_noise"), title="SamplerDPMPP_2S_Ancestral"
    ),
    entry("SamplerLMS", widgets=("order",), title="SamplerLMS"),
    entry(
        "SamplerDPMPP_2M_SDE",
        widgets=("solver_type", "eta", "s_noise", "noise_device"),
        title="SamplerDPMPP_2M_SDE",
    ),
    entry(
        "SamplerDPMPP_3M_SDE",
        widgets=("eta", "s_noise", "noise_device"),
        title="SamplerDPMPP_3M_SDE",
    ),
    entry(
        "SamplerDPMPP_SDE",
        widgets=("eta", "s_noise", "r", "noise_device"),
        title="SamplerDPMPP_SDE",
    ),
    entry("BasicScheduler", widgets=("scheduler", "steps", "denoise"), title="BasicScheduler"),
    entry(
        "KarrasScheduler",
        widgets=("steps", "sigma_max", "sigma_min", "rho"),
        title="KarrasScheduler",
    ),
    entry(
        "ExponentialScheduler",
        widgets=("steps", "sigma_max", "sigma_min"),
        title="ExponentialScheduler",
    ),
    entry(
        "PolyexponentialScheduler",
        widgets=("steps", "sigma_max", "sigma_min", "rho"),
        title="PolyexponentialScheduler",
    ),
    entry("VPScheduler", widgets=("steps", "beta_d", "beta_min", "eps_s"), title="VPScheduler"),
    entry("SDTurboScheduler", widgets=("steps", "denoise"), title="SDTurboScheduler"),
    entry(
        "BetaSamplingScheduler",
        widgets=("steps", "alpha", "beta"),
        title="BetaSamplingScheduler",
    ),
    entry("SplitSigmas", widgets=("step",), title="SplitSigmas"),
    entry("SplitSigmasDenoise", widgets=("denoise",), title="SplitSigmasDenoise"),
    entry("FlipSigmas", title="FlipSigmas"),
    entry("RandomNoise", widgets=("noise_seed",), seeds=("noise_seed",), title="RandomNoise"),
    entry("DisableNoise", title="DisableNoise"),
    entry("BasicGuider", title="BasicGuider"),
    entry("CFGGuider", widgets=("cfg",), title="CFGGuider"),
    entry(
        "DualCFGGuider",
        widgets=("cfg_conds", "cfg_cond2_negative", "style"),
        title="DualCFGGuider",
    ),
    entry(
        "SamplerCustom",
        widgets=("add_noise", "noise_seed", "cfg"),
        seeds=("noise_seed",),
        outputs=("output", "denoised_output"),
        title="SamplerCustom",
    ),
    entry(
        "SamplerCustomAdvanced",
        outputs=("output", "denoised_output"),
        title="SamplerCustomAdvanced",
    ),
    entry("AddNoise", title="AddNoise"),
)
