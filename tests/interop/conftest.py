"""Shared fixtures: a model root holding a tiny SD 1.x checkpoint under the names the fixture
workflows ask for, a tiny LoRA, the registry over it and one executor (its cache keeps the
loaded model between tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, PngImagePlugin
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file
from tests.helpers.workflow_files import CheckpointKind, tiny_f8_pipeline

FIXTURES = Path(__file__).parent / "fixtures"
#: The checkpoint name ComfyUI's default workflow (and our fixtures) ask for.
CKPT = "v1-5-pruned-emaonly.safetensors"


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interop_models")
    pipeline = make_tiny_pipeline(ModelFamily.SD1)
    first = write_single_file(pipeline, root / "checkpoints" / CKPT)
    (root / "checkpoints" / "sd15").mkdir()
    shutil.copyfile(first, root / "checkpoints" / "sd15" / CKPT)
    conv = pipeline.unet.conv_in.weight
    generator = torch.Generator().manual_seed(3)
    (root / "loras").mkdir()
    save_file(
        {
            "lora_unet_conv_in.lora_down.weight": torch.randn(
                2, conv.shape[1], *conv.shape[2:], generator=generator
            ),
            "lora_unet_conv_in.lora_up.weight": torch.randn(conv.shape[0], 2, 1, 1) * 0.01,
            "lora_unet_conv_in.alpha": torch.tensor(2.0),
        },
        root / "loras" / "style.safetensors",
    )
    return root


@pytest.fixture(scope="session")
def registry(model_root):
    return build_registry(ModelPaths.of(model_root))


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory):
    """A registry over a model root with no models at all."""
    return build_registry(ModelPaths.of(tmp_path_factory.mktemp("no_models")))


@pytest.fixture(scope="session")
def executor(registry) -> Executor:
    return Executor(registry)


@pytest.fixture(scope="module")
def pipelines():
    """Tiny pipelines by kind and seed, each built once for the test module that asks."""
    built: dict[tuple[CheckpointKind, int], object] = {}

    def get(kind: CheckpointKind, seed: int = 0):
        if (kind, seed) not in built:
            built[(kind, seed)] = tiny_f8_pipeline(kind, seed)
        return built[(kind, seed)]

    return get


def write_png(
    path: Path, text: dict[str, str], size: tuple[int, int] = (32, 32), alpha: bool = False
) -> Path:
    """A small picture with tEXt chunks, as ComfyUI and A1111 write them (PIL's add_text)."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    mode = "RGBA" if alpha else "RGB"
    picture = Image.new(mode, size, (200, 80, 40, 255) if alpha else (200, 80, 40))
    if alpha:  # a transparent square in the middle: the area to repaint
        w, h = size
        picture.paste((0, 0, 0, 0), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    picture.save(path, pnginfo=info)
    return path


def copy_fixture(name: str, folder: Path) -> Path:
    target = folder / name
    shutil.copyfile(FIXTURES / name, target)
    return target


def saved_files(report) -> list[Path]:
    return [
        Path(record.value)
        for entry in report.entries.values()
        for record in entry.records
        if record.kind == "file"
    ]
