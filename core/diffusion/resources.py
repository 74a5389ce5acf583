"""Access to the configs and tokenizer files shipped in ``resources/``."""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.diffusion.errors import ModelLoadError

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
CONFIGS = RESOURCES / "configs"
CLIP_TOKENIZER = RESOURCES / "tokenizers" / "clip"
_TOKENIZER_FILES = ("vocab.json", "merges.txt")


def load_component_config(folder: str, component: str) -> dict[str, Any]:
    """Return a fresh copy of ``resources/configs/<folder>/<component>.json``."""
    return json.loads(_read_config(folder, component))


@lru_cache(maxsize=64)
def _read_config(folder: str, component: str) -> str:
    path = CONFIGS / folder / f"{component}.json"
    if not path.is_file():
        raise ModelLoadError(
            path,
            f"the shipped {component} config is missing.",
            "Reinstall LatentLoom or restore resources/configs from the repository.",
        )
    return path.read_text(encoding="utf-8")


def load_clip_tokenizer(folder: Path | None = None) -> Any:
    """Load a CLIP BPE tokenizer from local files only (the shipped one by default)."""
    from transformers import CLIPTokenizer

    folder = CLIP_TOKENIZER if folder is None else Path(folder)
    missing = [name for name in _TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(
            folder,
            f"the CLIP tokenizer files {', '.join(missing)} are missing.",
            "Run tools/make_clip_tokenizer.py to regenerate the shipped tokenizer, or restore "
            "the model folder's tokenizer/ directory.",
        )
    return _cached_tokenizer(str(folder.resolve()), CLIPTokenizer)


@lru_cache(maxsize=8)
def _cached_tokenizer(folder: str, tokenizer_class: Any) -> Any:
    return tokenizer_class.from_pretrained(folder, local_files_only=True)
