"""The step profile's sliced attention computes what PyTorch's attention computes, so the
speed and error it reports compare like with like."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.step_profile import sliced_attention


def test_sliced_attention_equals_scaled_dot_product_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 300, 40) for _ in range(3))
    # 300 queries in slices of 128: the last slice is short, and every head is its own product.
    got = sliced_attention(q, k, v, rows=128)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-5)
