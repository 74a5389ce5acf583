"""Pickled model files that try to run code are refused, named, and never executed."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy
import pytest
import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError


class _Call:
    """Unpickling this calls ``function(*args)``: each test's payload creates a marker file."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


def _payloads(marker: Path) -> dict[str, tuple[object, str]]:
    """name → (object whose unpickling creates ``marker``, the global the message must name)."""
    touch = f"touch '{marker}'"
    return {
        "os.system": (_Call(os.system, touch), "posix.system"),
        "eval": (_Call(eval, f"open({str(marker)!r}, 'w').close()"), "builtins.eval"),
        "popen": (_Call(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
        "path.touch": (_Call(Path.touch, marker), "pathlib.Path"),
    }


def _handwritten(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Opcode streams no ``__reduce__`` produces: a literal ``os system`` GLOBAL (protocol 0)
    and a STACK_GLOBAL of ``builtins.exec`` reduced with a forbidden callable (protocol 4)."""
    command = f"touch '{marker}'".encode()
    code = f"open({str(marker)!r}, 'w').close()".encode()
    protocol_4 = (
        b"\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x94"
        + b"\x8c"
        + bytes([len(code)])
        + code
        + b"\x94\x85\x94R\x94."
    )
    return {
        "global-os-system": (b"cos\nsystem\n(V" + command + b"\ntR.", "os.system"),
        "stack-global-exec": (protocol_4, "builtins.exec"),
    }


def _assert_refused(path: Path, name: str, marker: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert str(path) in message
    assert "could run arbitrary code" in message
    assert name in message
    assert "weights_only" not in message
    assert "download" not in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("kind", ["os.system", "eval", "popen", "path.touch"])
def test_plain_pickles_of_every_protocol_are_refused_by_name(tmp_path, kind, protocol):
    marker = tmp_path / "executed"
    payload, name = _payloads(marker)[kind]
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": [0.5], "payload": payload}, protocol=protocol))
    _assert_refused(path, name, marker)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("kind", ["os.system", "eval", "popen", "path.touch"])
def test_torch_saved_checkpoints_are_refused_by_name(tmp_path, kind, zip_format):
    marker = tmp_path / "executed"
    payload, name = _payloads(marker)[kind]
    path = tmp_path / "model.ckpt"
    contents = {"state_dict": {"w": torch.zeros(2)}, "payload": payload}
    torch.save(contents, path, _use_new_zipfile_serialization=zip_format)
    _assert_refused(path, name, marker)


@pytest.mark.parametrize("kind", ["global-os-system", "stack-global-exec"])
def test_handwritten_opcode_streams_are_refused_by_name(tmp_path, kind):
    marker = tmp_path / "executed"
    data, name = _handwritten(marker)[kind]
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    _assert_refused(path, name, marker)


def test_a_payload_among_real_tensors_names_the_dangerous_object(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "model.pt"
    payload = _Call(os.system, f"touch '{marker}'")
    path.write_bytes(pickle.dumps({"w": torch.zeros(2), "payload": payload}, protocol=2))
    _assert_refused(path, "posix.system", marker)


@pytest.mark.parametrize("data", [b"\x80\x02}q\x00(X", b"not a pickle"])
def test_damaged_files_never_advise_turning_protection_off(tmp_path, data):
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="truncated, corrupt or not a model") as info:
        read_state_dict(path)
    assert "weights_only" not in str(info.value)


def _lightning_checkpoint(path: Path, **extra: object) -> dict[str, torch.Tensor]:
    tensors = {"model.diffusion_model.out.2.bias": torch.arange(4.0)}
    contents = {"state_dict": tensors, "global_step": numpy.int64(470000), **extra}
    torch.save(contents, path, _use_new_zipfile_serialization=False)
    return tensors


def test_lightning_checkpoint_with_numpy_scalars_and_arrays_loads(tmp_path):
    path = tmp_path / "sd-v1-4.ckpt"
    tensors = _lightning_checkpoint(
        path, epoch=numpy.float32(5.0), seen=numpy.arange(3), flags=numpy.array([True, False])
    )
    loaded = read_state_dict(path)
    assert loaded.keys() == tensors.keys()
    assert torch.equal(loaded["model.diffusion_model.out.2.bias"], tensors[next(iter(tensors))])


def test_numpy_names_written_by_numpy_1_are_allowed(tmp_path):
    path = tmp_path / "sd-v1-5.ckpt"
    _lightning_checkpoint(path)
    data = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert list(read_state_dict(path)) == ["model.diffusion_model.out.2.bias"]


def test_numpy_globals_are_allowed_only_during_our_load(tmp_path):
    before = list(torch.serialization.get_safe_globals())
    path = tmp_path / "model.ckpt"
    _lightning_checkpoint(path)
    read_state_dict(path)
    assert list(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
