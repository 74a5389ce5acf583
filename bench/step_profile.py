"""Where a sampling step's time goes on this machine, by operator, against the matmul peak.

Loads the random full-size SD 1.5 file (``bench/sd15_checkpoint.py``) through LatentLoom's
loader, then in one process:

- *peak*: the best bfloat16 (and float32) matrix product this CPU does, 4096³ and the UNet's
  feed-forward shape, in TFLOP/s: the floor a step can reach is its FLOPs over this;
- *profile*: one CFG UNet call (batch 2, 512² unless ``--size``) under ``torch.profiler``,
  self time per operator and its share, plus the step's FLOPs (``torch.utils.flop_counter``);
- *attention*: PyTorch's scaled-dot-product attention against the same attention computed as
  a matrix product, a softmax and a matrix product per head and query slice (what an attention
  "slicing" option would do), for the UNet's largest self-attention, with each one's error
  against a float32 computation on the same inputs, at the logit spread of a random model
  (std ~1) and of a sharp layer (std ~9).

Prints JSON. Run on a quiet machine: ``python bench/step_profile.py [--size 512]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.diffusion import offline  # noqa: E402, F401  (before diffusers/transformers)

# isort: split
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.sd15_checkpoint import checkpoint_path  # noqa: E402


def _best(call, repeats: int = 3) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def peak() -> dict[str, float]:
    """TFLOP/s of the best matrix products, bfloat16 and float32."""
    found = {}
    for dtype in (torch.bfloat16, torch.float32):
        for m, k, n in ((4096, 4096, 4096), (8192, 320, 1280)):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            seconds = _best(lambda a=a, b=b: a @ b)
            found[f"{str(dtype)[6:]} {m}x{k}x{n}"] = round(2 * m * k * n / seconds / 1e12, 3)
    return found


def profile(unet, size: int) -> dict[str, object]:
    """Self time per operator of one CFG UNet call, and the call's FLOPs."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    from torch.utils.flop_counter import FlopCounterMode

    latent = torch.randn(2, 4, size // 8, size // 8, dtype=torch.bfloat16)
    timestep = torch.tensor([500, 500])
    context = torch.randn(2, 77, 768, dtype=torch.bfloat16)

    def call():
        return unet(latent, timestep, encoder_hidden_states=context)

    seconds = _best(call, repeats=2)
    # The flop counter does not count the CPU attention kernel: its work is added from the
    # shapes (2·L·S·d multiply-adds per head, for Q·Kᵀ and for P·V).
    attention_flops = 0
    sdpa = F.scaled_dot_product_attention

    def counted(q, k, v, *args, **kwargs):
        nonlocal attention_flops
        attention_flops += 4 * q.shape[:-2].numel() * q.shape[-2] * k.shape[-2] * q.shape[-1]
        return sdpa(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = counted  # this process only: diffusers looks it up per call
    try:
        with FlopCounterMode(display=False) as counter:
            call()
    finally:
        F.scaled_dot_product_attention = sdpa
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    rows = sorted(prof.key_averages(), key=lambda row: -row.self_cpu_time_total)
    total = sum(row.self_cpu_time_total for row in rows)
    operators = {
        row.key: {
            "self_s": round(row.self_cpu_time_total / 1e6, 3),
            "share": round(row.self_cpu_time_total / total, 3),
            "calls": row.count,
        }
        for row in rows[:12]
    }
    flops = counter.get_total_flops() + attention_flops
    return {
        "call_s": round(seconds, 3),
        "tflop": round(flops / 1e12, 3),
        "attention_tflop": round(attention_flops / 1e12, 3),
        "tflop_per_s": round(flops / seconds / 1e12, 3),
        "operators": operators,
    }


def sliced_attention(q, k, v, rows: int = 1024):
    """Attention as matrix product, softmax, matrix product, per head and slice of queries."""
    *lead, length, width = q.shape
    q3 = (q * width**-0.5).reshape(-1, length, width)
    k3, v3 = k.reshape(-1, k.shape[-2], width), v.reshape(-1, v.shape[-2], v.shape[-1])
    out = q3.new_empty(q3.shape[0], length, v.shape[-1])
    for head in range(q3.shape[0]):
        keys, values = k3[head].t(), v3[head]
        for start in range(0, length, rows):
            scores = torch.mm(q3[head, start : start + rows], keys)
            torch.mm(scores.softmax(-1), values, out=out[head, start : start + rows])
    return out.reshape(*lead, length, v.shape[-1])


def attention(size: int) -> dict[str, object]:
    """SDPA against sliced attention at the UNet's largest self-attention (8 heads of 40)."""
    torch.manual_seed(0)
    length = (size // 8) ** 2
    found: dict[str, object] = {"shape": [2, 8, length, 40]}
    for spread in (1.0, 3.0):  # logit std ≈ spread²
        q, k = (torch.randn(2, 8, length, 40) * spread for _ in range(2))
        halves = tuple(x.bfloat16() for x in (q, k, torch.randn(2, 8, length, 40)))
        # The same bfloat16 inputs in float32: what each kernel adds to the inputs' rounding.
        reference = F.scaled_dot_product_attention(*(x.float() for x in halves))
        kernels = (("sdpa", F.scaled_dot_product_attention), ("sliced", sliced_attention))
        for name, function in kernels:
            seconds = _best(lambda f=function, h=halves: f(*h), repeats=2)
            error = (function(*halves).float() - reference).pow(2).mean().sqrt()
            found[f"{name} logit std {spread**2:.0f}"] = {
                "s": round(seconds, 3),
                "relative_rms_error": round(float(error / reference.std()), 5),
            }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="pixels per side")
    options = parser.parse_args()
    from core.diffusion.loading import LoadOverrides, load_checkpoint

    loaded = load_checkpoint(checkpoint_path(False), LoadOverrides(dtype=torch.bfloat16))
    with torch.inference_mode():
        result = {
            "threads": torch.get_num_threads(),
            "peak_tflop_per_s": peak(),
            "unet_call": profile(loaded.model.unet.eval(), options.size),
            "attention": attention(options.size),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
