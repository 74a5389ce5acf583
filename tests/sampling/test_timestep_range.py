"""Conditioning Set Timestep Range: a context applies only to the steps whose noise level lies
in its range of the schedule."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.conditioning import combine, set_timestep_range
from core.diffusion.sampling import SamplerSettings, sample
from tests.sampling.harness import active, model_of, random_conditioning

LATENT = (1, 4, 8, 8)


@pytest.fixture(scope="module")
def setup():
    pipeline = active()  # unit-scale predictions, so prompts visibly differ
    conds = [random_conditioning(pipeline, seed) for seed in (1, 2, 3)]
    return model_of(pipeline), *conds


def _run(model, positive, negative, **settings):
    options = {"sampler": "euler", "schedule": "normal", "steps": 4, "cfg": 5.0, "seed": 3}
    return sample(
        model, positive, negative, torch.zeros(LATENT), SamplerSettings(**{**options, **settings})
    )


def test_a_range_of_the_whole_schedule_changes_nothing(setup):
    model, a, b, negative = setup
    assert torch.equal(
        _run(model, set_timestep_range(a, 0.0, 1.0), negative), _run(model, a, negative)
    )
    # a context that applies only at σ = 0 is never evaluated
    never = combine(a, set_timestep_range(b, 1.0, 1.0))
    assert torch.equal(_run(model, never, negative), _run(model, a, negative))


def test_two_ranges_equal_a_run_split_between_the_two_prompts(setup):
    """Four 'normal' steps sit at timesteps 999, 666, 333 and 0: with a for 0..0.5 and b for
    0.5..1, the first two steps see a and the last two b, as a run split after step 2."""
    model, a, b, negative = setup
    ranged = combine(set_timestep_range(a, 0.0, 0.5), set_timestep_range(b, 0.5, 1.0))
    together = _run(model, ranged, negative)
    half = _run(model, a, negative, end_step=2, leftover_noise=True)
    rest = sample(
        model,
        b,
        negative,
        half,
        SamplerSettings("euler", "normal", 4, 5.0, 3, start_step=2, add_noise=False),
    )
    torch.testing.assert_close(together, rest, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together, _run(model, a, negative), atol=1e-3)


def test_a_backwards_range_is_refused():
    with pytest.raises(ValueError, match="start at or before end"):
        set_timestep_range(None, 0.8, 0.2)  # type: ignore[arg-type]
