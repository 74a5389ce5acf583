"""The socket types of image prompts: encoders and adapters are loaded models for the cache,
their outputs link only to inputs of the same type."""

from __future__ import annotations

from core.graph import types as t


def test_image_encoders_and_adapters_are_model_types_and_their_output_is_not():
    for name in (t.CLIP_VISION, t.STYLE_MODEL, t.IPADAPTER):
        assert name in t.SOCKET_TYPES
        assert name in t.MODEL_TYPES
    assert t.CLIP_VISION_OUTPUT in t.SOCKET_TYPES
    assert t.CLIP_VISION_OUTPUT not in t.MODEL_TYPES


def test_an_encoder_output_feeds_only_its_own_type():
    assert t.is_compatible(t.CLIP_VISION_OUTPUT, t.CLIP_VISION_OUTPUT)
    assert not t.is_compatible(t.CLIP_VISION_OUTPUT, t.CONDITIONING)
    assert not t.is_compatible(t.CLIP_VISION, t.CLIP)
    reason = t.incompatibility_reason(t.CLIP_VISION, t.CLIP_VISION_OUTPUT)
    assert reason is not None and "CLIP_VISION" in reason
