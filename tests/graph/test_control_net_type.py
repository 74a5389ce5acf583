"""CONTROL_NET: a loaded-model socket type that links only to itself."""

from __future__ import annotations

from core.graph import types as t


def test_control_net_is_a_model_type_that_links_only_to_itself():
    assert t.CONTROL_NET in t.SOCKET_TYPES
    assert t.CONTROL_NET in t.MODEL_TYPES  # kept under the model cache budget
    assert t.is_compatible(t.CONTROL_NET, t.CONTROL_NET)
    assert not t.is_compatible(t.CONTROL_NET, t.MODEL)
    assert not t.is_compatible(t.MODEL, t.CONTROL_NET)
