"""Find model files in ComfyUI- and AUTOMATIC1111-style folders.

A root may be a ``models`` folder (``checkpoints/``, ``vae/``, ``loras/``, ``embeddings/``,
``upscale_models/``, ``clip_vision/``, ``ipadapter/``, ``style_models/``, ``controlnet/``,
``t2i_adapter/``, ``unet/`` or ``diffusion_models/``, ``hypernetworks/``, ``gligen/``,
``text_encoders/`` or ``clip/``), a
ComfyUI installation (the same under ``models/``) or an AUTOMATIC1111 installation
(``models/Stable-diffusion``, ``models/VAE``, ``models/Lora``, ``embeddings``,
``models/ESRGAN``, ``models/RealESRGAN``, ``models/ControlNet``). Names are paths relative to a
kind's folder with ``/`` separators, as loader nodes show and workflows store them; a diffusers
pipeline folder is listed as one checkpoint name.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from core.diffusion.errors import ModelNotFoundError

# Kept here, not in checkpoint_io, so that listing model files never imports torch.
SAFETENSORS_SUFFIXES = frozenset({".safetensors"})
PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin"})
WEIGHT_SUFFIXES = SAFETENSORS_SUFFIXES | PICKLE_SUFFIXES


class ModelKind(StrEnum):
    """The kinds of model files loader nodes choose from."""

    CHECKPOINTS = "checkpoints"
    VAE = "vae"
    LORAS = "loras"
    EMBEDDINGS = "embeddings"
    UPSCALE_MODELS = "upscale_models"
    CLIP_VISION = "clip_vision"
    IPADAPTER = "ipadapter"
    STYLE_MODELS = "style_models"
    CONTROLNET = "controlnet"
    UNET = "unet"
    HYPERNETWORKS = "hypernetworks"
    GLIGEN = "gligen"
    TEXT_ENCODERS = "text_encoders"


# Folder names per kind, relative to a root, in search order: models folder, ComfyUI, A1111.
LAYOUTS: dict[ModelKind, tuple[str, ...]] = {
    ModelKind.CHECKPOINTS: ("checkpoints", "models/checkpoints", "models/Stable-diffusion"),
    ModelKind.VAE: ("vae", "models/vae", "models/VAE"),
    ModelKind.LORAS: ("loras", "models/loras", "models/Lora"),
    ModelKind.EMBEDDINGS: ("embeddings", "models/embeddings"),
    ModelKind.UPSCALE_MODELS: (
        "upscale_models",
        "models/upscale_models",
        "models/ESRGAN",
        "models/RealESRGAN",
    ),
    ModelKind.CLIP_VISION: ("clip_vision", "models/clip_vision"),
    # The folder ComfyUI's IPAdapter node pack reads.
    ModelKind.IPADAPTER: ("ipadapter", "models/ipadapter"),
    ModelKind.STYLE_MODELS: ("style_models", "models/style_models"),
    # ComfyUI lists ControlNets and T2I-Adapters together under one loader.
    ModelKind.CONTROLNET: (
        "controlnet",
        "t2i_adapter",
        "models/controlnet",
        "models/t2i_adapter",
        "models/ControlNet",
    ),
    # UNet-only files: ComfyUI's models/unet, renamed models/diffusion_models in 2024.
    ModelKind.UNET: ("unet", "diffusion_models", "models/unet", "models/diffusion_models"),
    ModelKind.HYPERNETWORKS: ("hypernetworks", "models/hypernetworks"),
    ModelKind.GLIGEN: ("gligen", "models/gligen"),
    # Standalone text encoders: ComfyUI's models/clip, renamed models/text_encoders in 2024.
    ModelKind.TEXT_ENCODERS: ("text_encoders", "clip", "models/text_encoders", "models/clip"),
}


@dataclass(frozen=True)
class ModelPaths:
    """An ordered list of model roots; earlier roots win when names collide."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, *roots: str | Path) -> ModelPaths:
        """Build from paths given as strings or Paths."""
        return cls(tuple(Path(root).expanduser() for root in roots))

    def folders(self, kind: ModelKind) -> list[Path]:
        """Existing folders holding ``kind``, each once, in search order."""
        found: list[Path] = []
        for root in self.roots:
            for relative in LAYOUTS[kind]:
                folder = root / relative
                if folder.is_dir() and not any(_same(folder, seen) for seen in found):
                    found.append(folder)
        return found

    def list(self, kind: ModelKind) -> list[str]:
        """Names of every ``kind`` file (and diffusers folder, for checkpoints), sorted."""
        names: set[str] = set()
        for folder in self.folders(kind):
            names.update(_names_in(folder, kind is ModelKind.CHECKPOINTS))
        return sorted(names, key=str.lower)

    def resolve(self, kind: ModelKind, name: str) -> Path:
        """The path of ``name``; raises ``ModelNotFoundError`` naming the folders searched."""
        relative = PurePosixPath(name.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ModelNotFoundError(
                None,
                f"'{name}' is not a model name (names are relative to the {kind} folders).",
                "Pick a name from the list.",
            )
        for folder in self.folders(kind):
            candidate = folder.joinpath(*relative.parts)
            if candidate.is_file() or (candidate / "model_index.json").is_file():
                return candidate
        folders = self.folders(kind)
        if not folders:
            roots = ", ".join(dict.fromkeys(str(root) for root in self.roots)) or "none"
            layout = " or ".join(LAYOUTS[kind])
            raise ModelNotFoundError(
                None,
                f"no {kind} model named '{name}': none of the model roots ({roots}) has a "
                f"{layout} folder.",
                f"Put the file in a '{LAYOUTS[kind][0]}' folder of a model root, or add the "
                "root that holds it to the model paths.",
            )
        if any(folder.joinpath(*relative.parts).is_dir() for folder in folders):
            raise ModelNotFoundError(
                None,
                f"'{name}' is a folder, not a {kind} model file or a diffusers model folder "
                "(it has no model_index.json).",
                "Choose a model file, or the folder of a complete diffusers model.",
            )
        searched = ", ".join(str(folder) for folder in folders)
        raise ModelNotFoundError(
            None,
            f"no {kind} model named '{name}'; searched {searched}.",
            "Put the file in one of these folders or add its root to the model paths.",
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _names_in(folder: Path, include_pipelines: bool) -> list[str]:
    names = []
    pipelines: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if any(path.is_relative_to(p) for p in pipelines):
            continue
        if include_pipelines and path.is_dir() and (path / "model_index.json").is_file():
            pipelines.append(path)
            names.append(path.relative_to(folder).as_posix())
        elif path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES:
            names.append(path.relative_to(folder).as_posix())
    return names
