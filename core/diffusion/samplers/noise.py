"""Noise for ancestral and SDE samplers, reproducible from the run's seed.

A noise sampler is called as ``noise(sigma, sigma_next)`` (k-diffusion's convention) and
returns standard normal noise for the step between those two noise levels, shaped like the
latent, on the latent's device. Both kinds below draw on the CPU, so a seed gives the same
picture on every device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

NoiseSampler = Callable[[float, float], torch.Tensor]


def step_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for the noise of step ``index`` of a run seeded ``seed``.

    SeedSequence hashing keeps the streams of neighbouring seeds and steps unrelated (seed s,
    step 1 shares nothing with seed s+1, step 0).
    """
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


class StepNoise:
    """Independent noise per step of a schedule: the step that starts at ``schedule[k]`` gets
    noise drawn from ``step_seed(seed, k)``.

    Keying the noise on the step's place in the whole schedule (not on how many steps this
    call has run) makes a run split across nodes draw exactly the noise of the whole run.
    """

    def __init__(
        self,
        seed: int,
        schedule: Sequence[float] | torch.Tensor,
        shape: Sequence[int],
        device: torch.device | str = "cpu",
    ) -> None:
        self.seed = seed
        self.schedule = [float(s) for s in schedule]
        self.shape = tuple(shape)
        self.device = torch.device(device)
        self._generator = torch.Generator("cpu")

    def index_of(self, sigma: float) -> int:
        """The index in the schedule of the level nearest ``sigma`` (in log σ)."""
        target = math.log(max(sigma, 1e-30))
        distances = [abs(math.log(max(s, 1e-30)) - target) for s in self.schedule]
        return int(np.argmin(distances))

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        self._generator.manual_seed(step_seed(self.seed, self.index_of(float(sigma))))
        noise = torch.randn(self.shape, generator=self._generator, dtype=torch.float32)
        return noise.to(self.device)


class BrownianNoise:
    """Increments of one Brownian motion W(σ) over [σ_min, σ_max], normalised to unit variance:
    ``noise(a, b) = (W(b) − W(a)) / √|b − a|``.

    SDE samplers that evaluate the model between two levels (DPM-Solver++ SDE) need the noise
    of a sub-step and of the whole step to be parts of one path, which independent draws are
    not; a Brownian tree (torchsde, Li et al. 2020) gives any increment of one path, the same
    for the same seed whatever order the increments are asked in.
    """

    def __init__(
        self,
        seed: int,
        sigma_min: float,
        sigma_max: float,
        shape: Sequence[int],
        device: torch.device | str = "cpu",
    ) -> None:
        import torchsde

        if not 0 < sigma_min < sigma_max:
            raise ValueError(
                f"Brownian noise needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}"
            )
        self.device = torch.device(device)
        self._shape = tuple(shape)
        self.low, self.high = float(sigma_min), float(sigma_max)
        # A halfway tree refined to 1e-6 with a pool of 24 normals per node: the settings
        # k-diffusion and diffusers use, so the same seed gives their noise.
        self._tree = torchsde.BrownianInterval(
            t0=self.low,
            t1=self.high,
            size=tuple(shape),
            dtype=torch.float32,
            device="cpu",
            entropy=seed % 2**63,
            tol=1e-6,
            pool_size=24,
            halfway_tree=True,
        )

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        a, b = float(sigma), float(sigma_next)
        sign = 1.0 if a < b else -1.0
        low, high = max(min(a, b), self.low), min(max(a, b), self.high)
        if high <= low:  # outside the path's interval (a step to σ = 0): no noise there
            return torch.zeros(self._shape, device=self.device)
        with warnings.catch_warnings():
            # The schedule's ends, rounded by torchsde, can sit a float32 ulp outside its
            # stored interval; the increment is the same.
            warnings.filterwarnings("ignore", "Should have t", UserWarning)
            increment = self._tree(low, high) * sign
        return (increment / math.sqrt(abs(high - low))).to(self.device)


def random_noise(like: torch.Tensor) -> NoiseSampler:
    """Unseeded noise shaped like ``like`` (torch's global generator), for callers that pass
    no noise sampler of their own."""
    return lambda sigma, sigma_next: torch.randn_like(like)
