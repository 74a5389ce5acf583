"""The tiled VAE nodes refuse an overlap that leaves a tile nothing of its own, before any
work, naming the overlap and both sizes in pixels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.engine import NodeError
from nodes.latents import SPECS

_SPECS = {spec.type_id: spec for spec in SPECS}
#: Just enough of a loaded VAE for its cell size: four encoder levels, 8 pixels a cell.
_VAE = SimpleNamespace(vae=SimpleNamespace(config=SimpleNamespace(block_out_channels=[1] * 4)))


def test_encoding_refuses_an_overlap_as_large_as_the_tile():
    encode = _SPECS["VAEEncodeTiled"].function
    with pytest.raises(NodeError) as caught:
        encode(None, pixels=None, vae=_VAE, tile_size=256, overlap=256)
    assert caught.value.field == "overlap"
    assert "overlap (256 pixels)" in caught.value.message
    assert "tile size (256 pixels)" in caught.value.message


def test_decoding_refuses_an_overlap_that_fills_the_tile_in_latent_cells():
    decode = _SPECS["VAEDecodeTiled"].function
    # 70 and 65 pixels are both 8 cells of 8 pixels: nothing would be left of the tile.
    with pytest.raises(NodeError) as caught:
        decode(None, samples={}, vae=_VAE, tile_size=70, overlap=65)
    assert caught.value.field == "overlap"
    assert "overlap (65 pixels)" in caught.value.message


def test_both_tiled_nodes_take_the_same_tile_widgets():
    def widgets(type_id):
        return [i for i in _SPECS[type_id].inputs if i.name in ("tile_size", "overlap")]

    assert widgets("VAEEncodeTiled") == widgets("VAEDecodeTiled")
    assert [w.default for w in widgets("VAEEncodeTiled")] == [512, 64]
