"""Pure conditioning operations."""

from __future__ import annotations

import pytest
import torch

from core.diffusion import conditioning as cond
from core.diffusion.conditioning import (
    Area,
    Conditioning,
    ConditioningEntry,
    SizeConditioning,
    sdxl_time_ids,
)


def entry(value: float, tokens: int = 77, pooled: float | None = None) -> ConditioningEntry:
    return ConditioningEntry(
        embeds=torch.full((1, tokens, 4), value),
        pooled=None if pooled is None else torch.full((1, 2), pooled),
    )


def test_combine_concatenates_lists():
    a, b, c = entry(1), entry(2), entry(3)
    combined = cond.combine(Conditioning((a,)), Conditioning((b, c)))
    assert combined.entries == (a, b, c)


def test_average_blends_and_fits_token_lengths():
    to = Conditioning((entry(1.0, 77, pooled=1.0),))
    longer = Conditioning((entry(3.0, 154, pooled=3.0),))
    result = cond.average(to, longer, 0.25)[0]
    torch.testing.assert_close(result.embeds, torch.full((1, 77, 4), 2.5))
    torch.testing.assert_close(result.pooled, torch.full((1, 2), 2.5))

    shorter_target = Conditioning((entry(1.0, 154),))
    padded = cond.average(shorter_target, Conditioning((entry(3.0, 77),)), 0.5)[0].embeds
    torch.testing.assert_close(padded[:, :77], torch.full((1, 77, 4), 2.0))
    torch.testing.assert_close(padded[:, 77:], torch.full((1, 77, 4), 0.5))


def test_concat_appends_tokens_of_first_source_entry():
    result = cond.concat(Conditioning((entry(1.0), entry(2.0))), Conditioning((entry(5.0),)))
    assert [e.embeds.shape[1] for e in result] == [154, 154]
    assert float(result[1].embeds[0, 100, 0]) == 5.0
    assert float(result[1].embeds[0, 10, 0]) == 2.0


def test_set_area_mask_size_and_zero_out_leave_inputs_untouched():
    original = Conditioning((entry(1.0, pooled=1.0),))
    area = cond.set_area(original, Area(64, 32, 256, 128), strength=0.7)
    assert area[0].options.area == Area(64, 32, 256, 128)
    assert area[0].options.strength == 0.7
    assert original[0].options.area is None

    mask = torch.zeros(64, 64)
    masked = cond.set_mask(area, mask, strength=0.5, mode="mask_bounds")
    assert masked[0].options.mask is mask
    assert masked[0].options.mask_strength == 0.5
    assert masked[0].options.area == Area(64, 32, 256, 128)
    with pytest.raises(ValueError, match="mask"):
        cond.set_mask(original, torch.zeros(1, 1, 8, 8))

    sized = cond.set_size(original, SizeConditioning((1024, 768)))
    assert sized[0].options.size.original_size == (1024, 768)

    zero = cond.zero_out(original)
    assert not zero[0].embeds.any() and not zero[0].pooled.any()
    assert original[0].embeds.all()


def test_area_validation():
    with pytest.raises(ValueError):
        Area(0, 0, 0, 10)


def test_sdxl_time_ids_order():
    ids = sdxl_time_ids(SizeConditioning((1024, 768), (16, 8), (896, 1152)), 1024, 1024)
    assert ids.tolist() == [[1024, 768, 16, 8, 896, 1152]]
    assert sdxl_time_ids(None, 832, 1216).tolist() == [[832, 1216, 0, 0, 832, 1216]]
