"""Merging models weight by weight, as ComfyUI's ModelMerge* and CLIPMerge* nodes do.

Every merge is W = c₁·W₁ + c₂·W₂ per tensor, the two coefficients possibly depending on the
tensor's name (per-block merges): a weighted sum (c₁ = ratio, c₂ = 1 − ratio), a sum (1, 1) or
a scaled difference (m, −m). The result is a new module that shares every tensor it does not
change with the first input, the way LoRA-patched copies do; the inputs are never modified.

Merges are computed eagerly, one tensor at a time in float32, into host memory in the first
model's dtype: the extra memory is what the merged model itself needs (one more UNet when the
two inputs differ everywhere, 1.7 GB for SD 1.5 in half precision) plus one float32 tensor
while it is computed. Tensors a merge leaves as they are cost nothing: c₁ = 1, c₂ = 0 keeps
model 1's tensor, and a tensor both inputs share (a model merged with a LoRA copy of itself)
is computed only where the coefficients do not sum to one.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

import torch

from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.models import ClipModel, DiffusionModel

#: The coefficients (c₁, c₂) of the merge for one tensor, by its name in the first module.
Coefficients = Callable[[str], tuple[float, float]]
#: Called after each merged tensor with (done, total); may raise to stop the merge.
MergeProgress = Callable[[int, int], None]

#: The UNet's input convolution may have more input channels in model 1 than in model 2 (an
#: inpainting model's 9 against 4): the shared channels merge, model 2 counts as zero on the rest.
_WIDER_INPUT = "conv_in.weight"


class MergeError(ValueError):
    """Two models that cannot be merged; the message says which input differs and how."""


def copy_with_tensors(
    base: torch.nn.Module, tensors: Mapping[str, torch.Tensor]
) -> torch.nn.Module:
    """A structural copy of ``base`` sharing every parameter and buffer with it, except those
    named in ``tensors`` (``"block.0.weight"``), which it holds instead."""
    memo = {id(t): t for t in itertools.chain(base.parameters(), base.buffers())}
    copied = copy.deepcopy(base, memo)
    for name, tensor in tensors.items():
        owner_name, _, attribute = name.rpartition(".")
        owner = copied.get_submodule(owner_name)
        if attribute in owner._parameters:
            owner._parameters[attribute] = torch.nn.Parameter(tensor, requires_grad=False)
        elif attribute in owner._buffers:
            owner._buffers[attribute] = tensor
        else:
            raise KeyError(f"{type(base).__name__} has no parameter or buffer {name!r}")
    return copied


def _float_tensors(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The module's floating-point parameters and buffers by name (integer buffers such as
    CLIP's position ids are indices, not weights: they are never merged)."""
    for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        if tensor.is_floating_point():
            yield name, tensor


def architecture_problem(
    first: torch.nn.Module, second: torch.nn.Module, names: tuple[str, str]
) -> str | None:
    """Why ``second`` cannot be merged into ``first`` (called ``names``), or None."""
    mine, theirs = dict(_float_tensors(first)), dict(_float_tensors(second))
    for name, tensor in mine.items():
        other = theirs.get(name)
        if other is None:
            return f"{names[1]} has no tensor {name!r}, which {names[0]} has"
        if other.shape != tensor.shape and not _wider_input(name, tensor, other):
            return (
                f"{name!r} has shape {list(tensor.shape)} in {names[0]} but "
                f"{list(other.shape)} in {names[1]}"
            )
    extra = next((name for name in theirs if name not in mine), None)
    if extra is not None:
        return f"{names[1]} has a tensor {extra!r} that {names[0]} lacks"
    return None


def _wider_input(name: str, first: torch.Tensor, second: torch.Tensor) -> bool:
    return (
        name == _WIDER_INPUT
        and first.ndim == second.ndim == 4
        and first.shape[1] > second.shape[1]
        and first.shape[0] == second.shape[0]
        and first.shape[2:] == second.shape[2:]
    )


@torch.no_grad()
def merge_modules(
    first: torch.nn.Module,
    second: torch.nn.Module,
    coefficients: Coefficients,
    names: tuple[str, str] = ("model1", "model2"),
    progress: MergeProgress | None = None,
) -> torch.nn.Module:
    """``first`` with every floating tensor W₁ replaced by c₁·W₁ + c₂·W₂ (see module docs).

    Raises ``MergeError`` when the two modules' tensors differ in names or shapes.
    """
    problem = architecture_problem(first, second, names)
    if problem is not None:
        raise MergeError(f"cannot merge: {problem}. Merge models of one family and kind.")
    theirs = dict(_float_tensors(second))
    tensors = list(_float_tensors(first))
    merged: dict[str, torch.Tensor] = {}
    host = torch.device("cpu")
    for done, (name, mine) in enumerate(tensors, start=1):
        other = theirs[name]
        c1, c2 = coefficients(name)
        same = mine.shape == other.shape and _same_values(mine, other)
        if (c1 == 1.0 and c2 == 0.0) or (same and c1 + c2 == 1.0):
            pass  # W₁ itself
        else:
            result = mine.to(host, torch.float32) * c1
            part = other.to(host, torch.float32) * c2
            if part.shape == result.shape:
                result += part
            else:  # a wider input convolution: model 2 counts as zero on the extra channels
                result[:, : part.shape[1]] += part
            merged[name] = result.to(mine.dtype)
        if progress is not None:
            progress(done, len(tensors))
    return copy_with_tensors(first, merged) if merged else first


def _same_values(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Whether two tensors are one: the same object or the same view of one storage."""
    return first is second or (
        first.device == second.device
        and first.dtype == second.dtype
        and first.data_ptr() == second.data_ptr()
        and first.stride() == second.stride()
    )


def weighted_sum(ratio: float) -> Coefficients:
    """ComfyUI's ModelMergeSimple: W = ratio·W₁ + (1 − ratio)·W₂ (ratio 1 keeps model 1)."""
    return lambda name: (ratio, 1.0 - ratio)


def add() -> Coefficients:
    """ComfyUI's ModelMergeAdd: W = W₁ + W₂."""
    return lambda name: (1.0, 1.0)


def difference(multiplier: float) -> Coefficients:
    """ComfyUI's ModelMergeSubtract: W = multiplier·(W₁ − W₂)."""
    return lambda name: (multiplier, -multiplier)


def unet_block_ratios(ratios: Mapping[str, float], unet_config: Mapping) -> Coefficients:
    """ComfyUI's ModelMergeBlocks: a weighted sum whose ratio is that of the longest LDM name
    prefix in ``ratios`` ("input", "middle", "out") the tensor's LDM name starts with; tensors
    none matches (the time embedding) take the first ratio. "out" covers output_blocks and
    the final norm and convolution, as in ComfyUI."""
    default = next(iter(ratios.values()))

    def coefficients(name: str) -> tuple[float, float]:
        try:
            ldm = unet_module_to_ldm(name, unet_config)
        except KeyError:
            ldm = name
        matching = [prefix for prefix in ratios if ldm.startswith(prefix)]
        ratio = ratios[max(matching, key=len)] if matching else default
        return ratio, 1.0 - ratio

    return coefficients


def _same_family(first: object, second: object, names: tuple[str, str], what: str) -> None:
    if first != second:
        raise MergeError(
            f"cannot merge: {names[0]} is an {first} {what} and {names[1]} an {second} one. "
            "Merge models of one family (SD 1.x, SD 2.x or SDXL)."
        )


def merge_models(
    model1: DiffusionModel,
    model2: DiffusionModel,
    coefficients: Coefficients,
    progress: MergeProgress | None = None,
) -> DiffusionModel:
    """MODEL 1 with its UNet merged with MODEL 2's; everything else (family, prediction,
    sampling settings, preview VAE) is model 1's, as ComfyUI keeps."""
    _same_family(model1.family, model2.family, ("model1", "model2"), "UNet")
    unet = merge_modules(model1.unet, model2.unet, coefficients, ("model1", "model2"), progress)
    return model1 if unet is model1.unet else replace(model1, unet=unet)


def merge_clips(
    clip1: ClipModel,
    clip2: ClipModel,
    coefficients: Coefficients,
    progress: MergeProgress | None = None,
) -> ClipModel:
    """CLIP 1 with each text encoder merged with CLIP 2's; its layer choice is clip 1's."""
    _same_family(clip1.family, clip2.family, ("clip1", "clip2"), "text encoder")
    if len(clip1.encoders) != len(clip2.encoders):
        raise MergeError(
            f"cannot merge: clip1 has {len(clip1.encoders)} text encoders and clip2 "
            f"{len(clip2.encoders)}. Merge text encoders of one family (SD 1.x, SD 2.x, SDXL)."
        )
    encoders = []
    for number, (mine, theirs) in enumerate(zip(clip1.encoders, clip2.encoders, strict=True)):
        names = (
            ("clip1", "clip2")
            if len(clip1.encoders) == 1
            else (
                f"clip1's encoder {number + 1}",
                f"clip2's encoder {number + 1}",
            )
        )
        model = merge_modules(mine.model, theirs.model, coefficients, names, progress)
        encoders.append(mine if model is mine.model else replace(mine, model=model))
    return replace(clip1, encoders=tuple(encoders))
