"""No code path that loads a model may open a network connection."""

from __future__ import annotations

import os
import socket

import pytest

from core.diffusion.loading import load_checkpoint
from core.diffusion.offline import OFFLINE_ENVIRONMENT
from tests.diffusion.conftest import FORMATS, VARIANTS


class NetworkAttempted(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise NetworkAttempted(f"network access attempted: {args}")

    class RefusingSocket(socket.socket):
        def connect(self, address):
            refuse(address)

        def connect_ex(self, address):
            refuse(address)

    monkeypatch.setattr(socket, "socket", RefusingSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_offline_variables_are_set():
    for name, value in OFFLINE_ENVIRONMENT.items():
        assert os.environ[name] == value
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loading_touches_no_network(variant, fmt, tiny_files, no_network):
    from core.diffusion.text_encoding import encode_prompt

    loaded = load_checkpoint(tiny_files[(variant, fmt)])
    encode_prompt(loaded.clip, "a (red:1.2) cube")
    assert no_network == []
