"""AUTOMATIC1111's ``parameters`` text (PNG info) turned into an equivalent graph.

The text is the prompt, an optional ``Negative prompt: …`` part, then one line of settings::

    a cat in a hat <lora:style:0.8>
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 123, Size: 512x768,
    Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, Version: v1.6.0

(the settings are one line in the file). The graph is LoadCheckpoint → (LoRAs) → (CLIP Set
Last Layer) → two CLIP Text Encodes → Empty Latent Image → KSampler → VAE Decode → Save Image,
with a latent or pixel upscale and a second KSampler for a hires-fix pass, or Load Image → VAE
Encode in place of the empty latent for image-to-image. Settings with no place in the graph are
kept in ``workflow.extra["a1111"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from core.graph.model import Graph
from core.graph.spec import NodeRegistry, WidgetInput
from core.graph.workflow import Workflow
from nodes.interop.report import ImportReport, ReportBuilder, SourceFormat


@dataclass(frozen=True)
class A1111Parameters:
    """The parts of an A1111 ``parameters`` text."""

    prompt: str
    negative_prompt: str
    #: The settings line by key, in file order ("Steps" → "20", "Sampler" → "Euler a"…).
    settings: Mapping[str, str]


_SETTINGS_LINE = re.compile(r"^\s*Steps:\s*\d")
#: ``Key: value`` pairs; a value is a JSON-style quoted string or runs to the next comma.
_SETTING = re.compile(r'\s*([A-Za-z][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_NEGATIVE = "Negative prompt:"
_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::\s*(-?[\d.]+))?(?::[^>]*)?>", re.IGNORECASE)


def looks_like_parameters(text: str) -> bool:
    """Whether ``text`` reads as A1111 generation parameters."""
    return any(_SETTINGS_LINE.match(line) for line in text.splitlines())


def parse_parameters(text: str) -> A1111Parameters:
    """Splits an A1111 ``parameters`` text into prompt, negative prompt and settings."""
    lines = text.strip().splitlines()
    settings_at = max(
        (i for i, line in enumerate(lines) if _SETTINGS_LINE.match(line)), default=len(lines)
    )
    settings: dict[str, str] = {}
    for line in lines[settings_at:]:
        for match in _SETTING.finditer(line):
            key, value = match.group(1).strip(), match.group(2).strip()
            if value.startswith('"') and value.endswith('"') and len(value) > 1:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    value = value[1:-1]
            settings[key] = value
    body = lines[:settings_at]
    negative_at = next((i for i, line in enumerate(body) if line.startswith(_NEGATIVE)), None)
    if negative_at is None:
        return A1111Parameters("\n".join(body).strip(), "", settings)
    negative = [body[negative_at][len(_NEGATIVE) :], *body[negative_at + 1 :]]
    return A1111Parameters(
        "\n".join(body[:negative_at]).strip(), "\n".join(negative).strip(), settings
    )


# --- samplers ------------------------------------------------------------------------------

#: A1111 sampler name (lower case, schedule suffix removed) → ComfyUI sampler_name.
SAMPLERS: dict[str, str] = {
    "euler a": "euler_ancestral",
    "euler": "euler",
    "lms": "lms",
    "heun": "heun",
    "dpm2": "dpm_2",
    "dpm2 a": "dpm_2_ancestral",
    "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 2m": "dpmpp_2m",
    "dpm++ sde": "dpmpp_sde",
    "dpm++ 2m sde": "dpmpp_2m_sde",
    "dpm++ 2m sde heun": "dpmpp_2m_sde",
    "dpm++ 3m sde": "dpmpp_3m_sde",
    "dpm fast": "dpm_fast",
    "dpm adaptive": "dpm_adaptive",
    "ddim": "ddim",
    "ddpm": "ddpm",
    "unipc": "uni_pc",
    "lcm": "lcm",
    "heun++ 2": "heunpp2",
}
#: A1111 schedule (a sampler-name suffix or the "Schedule type" setting) → ComfyUI scheduler.
SCHEDULES: dict[str, str] = {
    "karras": "karras",
    "exponential": "exponential",
    "uniform": "normal",
    "normal": "normal",
    "sgm uniform": "sgm_uniform",
    "simple": "simple",
    "ddim": "ddim_uniform",
    "beta": "beta",
    "kl optimal": "kl_optimal",
}
#: Samplers whose A1111 default schedule is not ComfyUI's "normal".
_DEFAULT_SCHEDULES = {"ddim": "ddim_uniform"}


def map_sampler(sampler: str | None, schedule_type: str | None = None) -> tuple[str, str]:
    """ComfyUI's (sampler_name, scheduler) for an A1111 sampler and optional schedule type,
    e.g. ("DPM++ 2M Karras", None) → ("dpmpp_2m", "karras"); ("Euler a", None) →
    ("euler_ancestral", "normal"). An unknown sampler gives ("", "")."""
    name = (sampler or "Euler a").strip().lower()
    schedule = None
    for suffix, comfy in SCHEDULES.items():
        if name.endswith(" " + suffix) and name[: -len(suffix) - 1] in SAMPLERS:
            name, schedule = name[: -len(suffix) - 1], comfy
            break
    if schedule_type and schedule_type.strip().lower() in SCHEDULES:
        schedule = SCHEDULES[schedule_type.strip().lower()]
    comfy_sampler = SAMPLERS.get(name, "")
    if not comfy_sampler:
        return "", ""
    return comfy_sampler, schedule or _DEFAULT_SCHEDULES.get(comfy_sampler, "normal")


# --- building the graph --------------------------------------------------------------------

_WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
_COLUMN = 340.0


def guess_model_name(name: str, available: Sequence[str]) -> str:
    """The model file A1111's ``name`` (a file name without its suffix) most likely is: one
    of ``available`` with that name or stem, else ``name`` + ".safetensors"."""
    name = name.strip().replace("\\", "/")
    lowered = name.lower()
    # A whole name (sub-folder included) beats a file of that stem in some sub-folder.
    for whole in (True, False):
        for candidate in available:
            path = PurePosixPath(candidate)
            names = (candidate, str(path.with_suffix(""))) if whole else (path.stem,)
            if lowered in (n.lower() for n in names):
                return candidate
    return name if lowered.endswith(_WEIGHT_SUFFIXES) else f"{name}.safetensors"


def _number(settings: Mapping[str, str], key: str, kind: type, default: Any, report: Any) -> Any:
    text = settings.get(key)
    if text is None or text == "":
        return default
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        report.warn(f"A1111 setting {key}: {text!r} is not a number; using {default}")
        return default


def _choices(registry: NodeRegistry, type_id: str, param: str) -> tuple[str, ...]:
    if type_id not in registry:
        return ()
    widget = registry.get(type_id).input(param)
    if not isinstance(widget, WidgetInput):
        return ()
    return registry.choices(widget) or ()


def build_workflow(
    parameters: A1111Parameters, registry: NodeRegistry, container: str = "png"
) -> tuple[Workflow, ImportReport]:
    """The graph that would remake the picture the parameters describe."""
    report = ReportBuilder()
    settings = parameters.settings
    graph = Graph(registry)

    def add(type_id: str, column: float, row: float, **params: Any) -> int:
        return graph.add_node(type_id, params=params, pos=(column * _COLUMN, row * 230.0)).id

    steps = _number(settings, "Steps", int, 20, report)
    cfg = _number(settings, "CFG scale", float, 7.0, report)
    seed = _number(settings, "Seed", int, 0, report)
    batch = _number(settings, "Batch size", int, 1, report)
    width, height = 512, 512
    size = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", settings.get("Size", ""))
    if size:
        width, height = int(size.group(1)), int(size.group(2))
    elif "Size" in settings:
        report.warn(f"A1111 setting Size: {settings['Size']!r} is not WIDTHxHEIGHT; using 512x512")
    sampler_name, scheduler = _sampler(settings, registry, report)

    model = settings.get("Model", "")
    ckpt_choices = _choices(registry, "LoadCheckpoint", "ckpt_name")
    if not model:
        report.warn("the parameters name no model; pick a checkpoint in Load Checkpoint")
    ckpt_name = guess_model_name(model, ckpt_choices) if model else ""
    loader = add("LoadCheckpoint", 0, 0, ckpt_name=ckpt_name)
    model_src, clip_src = (loader, "MODEL"), (loader, "CLIP")

    prompt, loras = _strip_loras(parameters.prompt)
    lora_choices = _choices(registry, "LoadLoRA", "lora_name")
    for row, (lora, strength) in enumerate(loras):
        node = add(
            "LoadLoRA",
            1,
            row,
            lora_name=guess_model_name(lora, lora_choices),
            strength_model=strength,
            strength_clip=strength,
        )
        graph.connect(*model_src, node, "model")
        graph.connect(*clip_src, node, "clip")
        model_src, clip_src = (node, "MODEL"), (node, "CLIP")
    clip_skip = _number(settings, "Clip skip", int, 1, report)
    if clip_skip > 1:
        node = add("CLIPSetLastLayer", 1, len(loras), stop_at_clip_layer=-clip_skip)
        graph.connect(*clip_src, node, "clip")
        clip_src = (node, "CLIP")

    positive = add("CLIPTextEncode", 2, 0, text=prompt)
    negative = add("CLIPTextEncode", 2, 1, text=parameters.negative_prompt)
    for node in (positive, negative):
        graph.connect(*clip_src, node, "clip")
    vae_src = (loader, "VAE")
    if settings.get("VAE"):
        vae = add(
            "LoadVAE",
            0,
            1,
            vae_name=guess_model_name(settings["VAE"], _choices(registry, "LoadVAE", "vae_name")),
        )
        vae_src = (vae, "VAE")

    hires = any(key.startswith("Hires") for key in settings)
    denoise = _number(settings, "Denoising strength", float, None, report)
    first_denoise = 1.0
    if denoise is not None and not hires:
        # Image-to-image: the source picture is not part of the parameters.
        image = add("LoadImage", 1, 2, image="")
        latent = add("VAEEncode", 2, 2)
        graph.connect(image, "IMAGE", latent, "pixels")
        graph.connect(*vae_src, latent, "vae")
        first_denoise = denoise
        report.warn(
            "these are image-to-image parameters: choose the source picture in Load Image "
            f"(node {image})"
        )
        if "Mask blur" in settings:
            report.warn("the inpainting mask is not part of the parameters; add it yourself")
    else:
        latent = add("EmptyLatentImage", 2, 2, width=width, height=height, batch_size=batch)
    sampler = add(
        "KSampler",
        3,
        0,
        seed=seed,
        steps=steps,
        cfg=cfg,
        sampler_name=sampler_name,
        scheduler=scheduler,
        denoise=first_denoise,
    )
    _feed_sampler(graph, sampler, model_src, positive, negative, (latent, "LATENT"))
    result, column = (sampler, "LATENT"), 4
    if hires:
        result, column = _hires_pass(
            graph, settings, result, model_src, positive, negative, vae_src, denoise, report
        )
    decode = add("VAEDecode", column, 0)
    graph.connect(*result, decode, "samples")
    graph.connect(*vae_src, decode, "vae")
    save = add("SaveImage", column + 1, 0, filename_prefix="LatentLoom")
    graph.connect(decode, "IMAGE", save, "images")

    used = {"Steps", "CFG scale", "Seed", "Size", "Sampler", "Schedule type", "Model"}
    used |= {"Batch size", "Clip skip", "VAE", "Denoising strength"}
    workflow = Workflow(
        graph,
        extra={
            "a1111": {
                "prompt": parameters.prompt,
                "negative_prompt": parameters.negative_prompt,
                "settings": dict(settings),
                "not_mapped": sorted(k for k in settings if k not in used and "Hires" not in k),
            }
        },
    )
    return workflow, report.build(workflow, SourceFormat.A1111, container=container)


def _sampler(
    settings: Mapping[str, str], registry: NodeRegistry, report: ReportBuilder
) -> tuple[str, str]:
    original = settings.get("Sampler", "Euler a")
    sampler_name, scheduler = map_sampler(original, settings.get("Schedule type"))
    if not sampler_name:  # an unknown sampler: its schedule is still worth keeping
        scheduler = map_sampler("Euler", settings.get("Schedule type"))[1]
    samplers = _choices(registry, "KSampler", "sampler_name")
    schedules = _choices(registry, "KSampler", "scheduler")
    if samplers and sampler_name not in samplers:
        fallback = "euler_ancestral" if " a" in f" {original.lower()} " else "euler"
        fallback = fallback if fallback in samplers else samplers[0]
        report.warn(f"A1111 sampler {original!r} has no equivalent here; using {fallback} instead")
        sampler_name = fallback
    if schedules and scheduler not in schedules:
        report.warn(f"schedule {scheduler!r} (from {original!r}) is not available; using normal")
        scheduler = "normal"
    return sampler_name, scheduler


def _strip_loras(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without ``<lora:name:weight>`` tags, and the LoRAs they asked for."""
    loras = []
    for match in _LORA_TAG.finditer(prompt):
        try:
            strength = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            strength = 1.0
        loras.append((match.group(1).strip(), strength))
    text = _LORA_TAG.sub("", prompt)
    text = re.sub(r"[ \t]*,[ \t]*(,[ \t]*)+", ", ", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip().strip(",").strip(), loras


def _feed_sampler(
    graph: Graph,
    sampler: int,
    model_src: tuple[int, str],
    positive: int,
    negative: int,
    latent_src: tuple[int, str],
) -> None:
    graph.connect(*model_src, sampler, "model")
    graph.connect(positive, "CONDITIONING", sampler, "positive")
    graph.connect(negative, "CONDITIONING", sampler, "negative")
    graph.connect(*latent_src, sampler, "latent_image")


#: A1111 latent upscaler names → our latent upscale_method.
_LATENT_UPSCALERS = {
    "latent": "bilinear",
    "latent (antialiased)": "bilinear",
    "latent (bicubic)": "bicubic",
    "latent (bicubic antialiased)": "bicubic",
    "latent (nearest)": "nearest-exact",
    "latent (nearest-exact)": "nearest-exact",
}


def _hires_pass(
    graph: Graph,
    settings: Mapping[str, str],
    first: tuple[int, str],
    model_src: tuple[int, str],
    positive: int,
    negative: int,
    vae_src: tuple[int, str],
    denoise: float | None,
    report: ReportBuilder,
) -> tuple[tuple[int, str], int]:
    """A1111's hires fix: upscale the first pass, then sample again at ``denoise``."""
    scale = _number(settings, "Hires upscale", float, 2.0, report)
    resize = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", settings.get("Hires resize", ""))
    upscaler = settings.get("Hires upscaler", "Latent")
    method = _LATENT_UPSCALERS.get(upscaler.strip().lower())

    def place(type_id: str, column: int, row: int, **params: Any) -> int:
        return graph.add_node(type_id, params=params, pos=(column * _COLUMN, row * 230.0)).id

    if method is not None:
        if resize:
            up = place(
                "LatentUpscale",
                4,
                0,
                upscale_method=method,
                width=int(resize.group(1)),
                height=int(resize.group(2)),
            )
        else:
            up = place("LatentUpscaleBy", 4, 0, upscale_method=method, scale_by=scale)
        graph.connect(*first, up, "samples")
        latent, column = (up, "LATENT"), 5
    else:
        report.warn(
            f"hires upscaler {upscaler!r} is an upscaling model LatentLoom lacks; the picture "
            "is resized with bicubic interpolation instead"
        )
        decode = place("VAEDecode", 4, 0)
        graph.connect(*first, decode, "samples")
        graph.connect(*vae_src, decode, "vae")
        if resize:
            scaled = place(
                "ImageScale",
                5,
                0,
                upscale_method="bicubic",
                width=int(resize.group(1)),
                height=int(resize.group(2)),
            )
        else:
            scaled = place("ImageScaleBy", 5, 0, upscale_method="bicubic", scale_by=scale)
        graph.connect(decode, "IMAGE", scaled, "image")
        encode = place("VAEEncode", 6, 0)
        graph.connect(scaled, "IMAGE", encode, "pixels")
        graph.connect(*vae_src, encode, "vae")
        latent, column = (encode, "LATENT"), 7
    first_params = graph.node(first[0]).params
    steps = _number(settings, "Hires steps", int, 0, report) or first_params["steps"]
    second = place(
        "KSampler",
        column,
        0,
        seed=first_params["seed"],
        steps=steps,
        cfg=first_params["cfg"],
        sampler_name=first_params["sampler_name"],
        scheduler=first_params["scheduler"],
        denoise=0.7 if denoise is None else denoise,
    )
    _feed_sampler(graph, second, model_src, positive, negative, latent)
    return (second, "LATENT"), column + 1
