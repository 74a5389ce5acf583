"""Read tensors from model files without ever executing anything stored in them.

``.safetensors`` holds only a JSON header and raw tensor bytes. Legacy pickled files (``.ckpt``,
``.pt``, ``.pth``, ``.bin``) are opened with ``torch.load(weights_only=True)``, whose restricted
unpickler accepts tensors and plain containers and refuses every other object, so a hostile file
fails instead of running code.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from core.diffusion.errors import ModelLoadError
from core.diffusion.model_paths import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Return every tensor of a single-file checkpoint, keyed by its stored name, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such file.", "Check the name and the model folders.")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _read_pickled(path)
    raise ModelLoadError(
        path,
        f"'{suffix}' is not a model file type LatentLoom reads.",
        "Expected .safetensors (preferred) or a legacy .ckpt/.pt/.pth/.bin.",
    )


def _read_safetensors(path: Path) -> StateDict:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            path,
            f"is not a readable .safetensors file ({exc}).",
            "It is truncated, corrupt or not a model; download or copy it again.",
        ) from exc


def _read_pickled(path: Path) -> StateDict:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc)
        if refused is None:
            raise _unreadable(path, exc) from exc
        raise ModelLoadError(
            path,
            "holds Python objects other than tensors, which LatentLoom refuses to load because "
            f"unpickling them could run arbitrary code (it refers to {refused}).",
            "Use a .safetensors version of this model, or convert the file with a tool you "
            "trust in an isolated environment.",
        ) from exc
    except Exception as exc:  # any other failure of the restricted unpickler: a damaged file
        raise _unreadable(path, exc) from exc
    return _tensors_of(path, loaded)


def _refused_global(exc: BaseException) -> str | None:
    """The object the restricted unpickler refused, if that is why it failed."""
    match = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return match.group(1) if match else None


def _unreadable(path: Path, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        path,
        f"is not a readable PyTorch checkpoint ({type(exc).__name__}: {_first_line(exc)}).",
        "It is truncated, corrupt or not a model; download or copy it again.",
    )


def _tensors_of(path: Path, loaded: object) -> StateDict:
    """Unwrap Lightning-style ``{"state_dict": {...}}`` containers and keep the tensors."""
    while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelLoadError(
            path,
            f"holds a {type(loaded).__name__}, not a dictionary of named tensors.",
            "Expected a Stable Diffusion, VAE or LoRA checkpoint.",
        )
    tensors = {
        key: value
        for key, value in loaded.items()
        if isinstance(key, str) and isinstance(value, torch.Tensor)
    }
    if not tensors:
        raise ModelLoadError(path, "holds no tensors.", "Expected model weights.")
    return tensors


def _first_line(exc: BaseException) -> str:
    """The informative line of an exception (torch's unpickler puts it after a preamble)."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    return text.splitlines()[0] if text else type(exc).__name__
