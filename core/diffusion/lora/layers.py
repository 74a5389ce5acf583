"""The weight updates ΔW of the LoRA family, computed from the factors a file stores.

* LoRA (Hu et al., 2021, eq. 3) and LoCon: ΔW = (α / r) · up · down, with an optional Tucker
  core ``mid`` for convolutions (ΔW[o, i, k, l] = Σ up[o, a] · mid[a, b, k, l] · down[b, i]).
* LoHa (Hyeon-Woo et al., 2022, "FedPara"): ΔW = (α / r) · (w1a · w1b) ⊙ (w2a · w2b), the
  Hadamard product of two low-rank products; convolutions may store each product as a Tucker
  core ``t`` with factors ``a`` [r, out] and ``b`` [r, in].
* LoKr (LyCORIS): ΔW = s · w1 ⊗ w2 (Kronecker product), either factor stored whole or as a
  low-rank product; s = α / r only when a factor is a low-rank product (r its rank), else 1.

Every ``delta`` returns float32 in the target weight's shape; a factor set whose product has
the wrong number of elements raises ``ValueError`` saying both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _shaped(product: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if product.numel() != shape.numel():
        raise ValueError(
            f"its update has shape {list(product.shape)}, the model's weight {list(shape)}"
        )
    return product.reshape(shape)


def _matrix(tensor: torch.Tensor) -> torch.Tensor:
    """A factor as a float32 matrix: rows stay, every other axis is flattened."""
    return tensor.flatten(1).float()


def _tucker(core: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rebuild a convolution kernel [out, in, k, l] from a Tucker core [r, r, k, l] and
    factors ``a`` [r, out], ``b`` [r, in]: W[p, q] = Σ_ij core[i, j] · a[i, p] · b[j, q]."""
    return torch.einsum("ijkl,ip,jq->pqkl", core.float(), _matrix(a), _matrix(b)).contiguous()


@dataclass(frozen=True, eq=False)
class LoraLayer:
    """One low-rank update: ``down`` [r, in, …], ``up`` [out, r, …], optional ``mid``, and α."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float
    mid: torch.Tensor | None = None

    def delta(self, shape: torch.Size) -> torch.Tensor:
        """ΔW = (α / r) · up · [mid ·] down, reshaped to the target weight's shape (float32)."""
        rank = self.down.shape[0]
        if self.mid is None:
            product = _matrix(self.up) @ _matrix(self.down)
        else:
            product = torch.einsum(
                "oa,abkl,bi->oikl", _matrix(self.up), self.mid.float(), _matrix(self.down)
            )
        return _shaped(product * (self.alpha / rank), shape)


@dataclass(frozen=True, eq=False)
class LohaLayer:
    """A LoHa update: two low-rank products multiplied element-wise, each optionally with a
    Tucker core (``t1``/``t2``; then ``w*_a`` are [r, out] and ``w*_b`` are [r, in])."""

    w1a: torch.Tensor
    w1b: torch.Tensor
    w2a: torch.Tensor
    w2b: torch.Tensor
    alpha: float
    t1: torch.Tensor | None = None
    t2: torch.Tensor | None = None

    def delta(self, shape: torch.Size) -> torch.Tensor:
        """ΔW = (α / r) · (w1a · w1b) ⊙ (w2a · w2b), r the rank of the first product."""
        rank = self.w1b.shape[0]
        first = self._product(self.w1a, self.w1b, self.t1)
        second = self._product(self.w2a, self.w2b, self.t2)
        if first.shape != second.shape:
            raise ValueError(
                f"its two Hadamard factors have shapes {list(first.shape)} and {list(second.shape)}"
            )
        return _shaped(first * second * (self.alpha / rank), shape)

    @staticmethod
    def _product(a: torch.Tensor, b: torch.Tensor, core: torch.Tensor | None) -> torch.Tensor:
        return _matrix(a) @ _matrix(b) if core is None else _tucker(core, a, b)


@dataclass(frozen=True, eq=False)
class LokrLayer:
    """A LoKr update w1 ⊗ w2; each factor whole (``w1``/``w2``) or a low-rank product
    (``w1a · w1b``, ``w2a · w2b``, the latter optionally with a Tucker core ``t2``)."""

    w1: torch.Tensor | None = None
    w1a: torch.Tensor | None = None
    w1b: torch.Tensor | None = None
    w2: torch.Tensor | None = None
    w2a: torch.Tensor | None = None
    w2b: torch.Tensor | None = None
    t2: torch.Tensor | None = None
    alpha: float | None = None

    def delta(self, shape: torch.Size) -> torch.Tensor:
        """ΔW = s · w1 ⊗ w2, s = α / r when a factor is a low-rank product of rank r."""
        rank = None
        if self.w1 is not None:
            w1 = self.w1.float()
        else:
            assert self.w1a is not None and self.w1b is not None
            rank = self.w1b.shape[0]
            w1 = _matrix(self.w1a) @ _matrix(self.w1b)
        if self.w2 is not None:
            w2 = self.w2.float()
        else:
            assert self.w2a is not None and self.w2b is not None
            rank = self.w2b.shape[0]  # the second factor's rank wins, as LyCORIS stores it
            if self.t2 is None:
                w2 = _matrix(self.w2a) @ _matrix(self.w2b)
            else:
                w2 = _tucker(self.t2, self.w2a, self.w2b)
        if w2.ndim == 4:
            w1 = w1[:, :, None, None]  # the kernel's spatial axes come from w2 alone
        scale = self.alpha / rank if self.alpha is not None and rank is not None else 1.0
        return _shaped(torch.kron(w1, w2) * scale, shape)


#: Any layer ``apply_loras`` can merge.
Layer = LoraLayer | LohaLayer | LokrLayer
