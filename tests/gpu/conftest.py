"""The GPU suite: whole workflows on the accelerator, on tiny random models in real key layouts.

Every test here is marked ``gpu`` and takes its device from the ``gpu_device`` fixture:
``"cuda"`` when ``torch.cuda.is_available()``, otherwise the test is skipped with "no CUDA
device", so the ordinary suite (``tools/test.sh``) only collects and skips it. Models run in
float16 on CUDA.

``LATENTLOOM_GPU_TESTS_DEVICE`` forces the device (any torch device name, e.g. ``cpu`` or
``cuda:1``). With ``cpu`` the suite runs on a machine without a GPU, in bfloat16 where the CPU
computes it natively (a coarser precision than float16, so the tolerances are checked against
the worse case) and float32 otherwise: that is how its own logic is tested where no GPU is. The
few assertions that only mean something on CUDA (bytes held by the device) are skipped there.

    LATENTLOOM_GPU_TESTS_DEVICE=cpu python -m pytest tests/gpu -q
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from core.diffusion import devices
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.graph.model import Graph, NodeId
from core.graph.spec import NodeRegistry
from nodes import build_registry
from nodes.interop import open_workflow
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file
from tests.helpers.workflow_files import write_lora_file, write_picture

DEVICE_ENVIRONMENT = "LATENTLOOM_GPU_TESTS_DEVICE"
DEFAULT_WORKFLOW = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "default.json"
#: The two checkpoints: different random weights in the same SD 1.x layout.
CHECKPOINTS = ("tiny.safetensors", "other.safetensors")
LORA = "style.safetensors"
#: The picture the inpainting test repaints (transparent square in the middle = the mask).
PICTURE = "source.png"
SIZE = 64
#: How close two runs of the same work must be (latents of a few tens): bit-identical on the
#: CPU and on CUDA alike, barring a GPU library picking another kernel for the same sum. Tight
#: enough that the test LoRA (about 1e-2 on the latent) or another seed (units) cannot pass.
SAME_WORK = {"atol": 1e-3, "rtol": 1e-5}


def chosen_device(environ: Mapping[str, str] = os.environ) -> str | None:
    """The device the suite runs on: the forced one, else ``"cuda"`` when there is one, else
    None (skip)."""
    forced = environ.get(DEVICE_ENVIRONMENT, "").strip()
    if forced:
        return forced
    return "cuda" if torch.cuda.is_available() else None


def half_precision(device: str) -> str:
    """The Load Checkpoint ``dtype`` the suite uses on ``device``."""
    if torch.device(device).type == "cuda":
        return "float16"
    return "bfloat16" if devices.cpu_has_native_bf16() else "float32"


def on_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def device_bytes(device: str) -> int:
    """Bytes of live tensors on ``device`` after a garbage collection (CUDA only)."""
    gc.collect()
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


@pytest.fixture(scope="session")
def gpu_device() -> str:
    device = chosen_device()
    if device is None:
        pytest.skip(f"no CUDA device (set {DEVICE_ENVIRONMENT}=cpu to run this suite on the CPU)")
    return device


@pytest.fixture(scope="session")
def gpu_dtype(gpu_device: str) -> str:
    return half_precision(gpu_device)


@pytest.fixture(scope="session")
def models_root(gpu_device: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny SD 1.x checkpoints, a kohya-layout LoRA for the first and a picture to repaint.

    Depends on ``gpu_device`` so that, without a device, the suite skips before building any.
    """
    root = tmp_path_factory.mktemp("gpu_models")
    first = make_tiny_pipeline(ModelFamily.SD1, seed=0)
    write_single_file(first, root / "checkpoints" / CHECKPOINTS[0])
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1, seed=1), root / "checkpoints" / CHECKPOINTS[1]
    )
    write_lora_file(first, root / "loras" / LORA, rank=4)
    write_picture(root / "input" / PICTURE, (SIZE, SIZE), alpha=True)
    return root


@pytest.fixture(scope="session")
def registry(models_root: Path) -> NodeRegistry:
    return build_registry(ModelPaths.of(models_root))


@dataclass(frozen=True)
class DefaultWorkflow:
    """The shipped default workflow, pointed at a tiny checkpoint, and its nodes by role."""

    graph: Graph
    load: NodeId
    positive: NodeId
    negative: NodeId
    empty: NodeId
    sampler: NodeId
    decode: NodeId
    save: NodeId
    guidance: NodeId


def default_workflow(
    registry: NodeRegistry,
    dtype: str,
    *,
    checkpoint: str = CHECKPOINTS[0],
    seed: int = 0,
    steps: int = 4,
    size: int = SIZE,
) -> DefaultWorkflow:
    """resources/workflows/default.json (Load Checkpoint → CLIP Text Encode ×2 → Empty Latent →
    KSampler → VAE Decode → Save Image) on ``checkpoint`` in ``dtype``, smaller and shorter."""
    graph = open_workflow(DEFAULT_WORKFLOW, registry).workflow.graph

    def one(type_id: str, title: str | None = None) -> NodeId:
        [found] = [n.id for n in graph if n.type_id == type_id and title in (None, n.title)]
        return found

    flow = DefaultWorkflow(
        graph,
        load=one("LoadCheckpoint"),
        positive=one("CLIPTextEncode", "Positive prompt"),
        negative=one("CLIPTextEncode", "Negative prompt"),
        empty=one("EmptyLatentImage"),
        sampler=one("KSampler"),
        decode=one("VAEDecode"),
        save=one("SaveImage"),
        guidance=one("GuidanceInterval"),
    )
    for name, value in {"ckpt_name": checkpoint, "dtype": dtype, "vae_clip_dtype": dtype}.items():
        graph.set_param(flow.load, name, value)
    graph.set_param(flow.empty, "width", size)
    graph.set_param(flow.empty, "height", size)
    graph.set_param(flow.sampler, "seed", seed)
    graph.set_param(flow.sampler, "steps", steps)
    return flow
