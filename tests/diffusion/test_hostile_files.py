"""Pickled model files that try to run code are refused, named, and never executed."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy
import pytest
import torch
from safetensors.torch import load_file

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.loading import load_checkpoint
from tests.diffusion.test_loading import assert_same_state
from tests.helpers.tiny_models import write_diffusers_folder


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


@pytest.mark.parametrize(
    "data", [b"\x80\x02}q\x00(X", b"not a pickle", b"cshopping\nlist\n\xff\x00 garbage"]
)
def test_damaged_files_never_advise_turning_protection_off(tmp_path, data):
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="truncated, corrupt or not a model") as info:
        read_state_dict(path)
    assert "weights_only" not in str(info.value)


def test_damaged_zip_checkpoints_quote_only_torch_s_first_sentence(tmp_path):
    """torch appends requests to report its internals ("Could this error message be
    improved?"); a user needs only what is wrong with the file."""
    import zipfile

    path = tmp_path / "model.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ModelLoadError, match="truncated, corrupt or not a model") as info:
        read_state_dict(path)
    message = str(info.value)
    assert "improved" not in message and "report" not in message
    assert "hasRecord" in message


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
    path = tmp_path / "model.ckpt"
    _lightning_checkpoint(path)
    read_state_dict(path)
    # torch registers some of its own classes lazily, on import: compare numpy's only.
    after = torch.serialization.get_safe_globals()
    assert not [g for g in after if "numpy" in getattr(g, "__module__", "")]
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


_WEIGHTS = {  # component folder → (safetensors name, pickled name) as the libraries write them
    "unet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "vae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "text_encoder": ("model.safetensors", "pytorch_model.bin"),
    "text_encoder_2": ("model.safetensors", "pytorch_model.bin"),
}


@pytest.fixture
def sd1_folder(tiny_pipelines, tmp_path) -> Path:
    return write_diffusers_folder(tiny_pipelines["sd1"], tmp_path / "sd1")


@pytest.mark.parametrize("component", ["unet", "vae", "text_encoder"])
def test_diffusers_folder_with_a_hostile_bin_is_refused_by_name(sd1_folder, component):
    marker = sd1_folder.parent / "executed"
    safetensors_name, pickled_name = _WEIGHTS[component]
    (sd1_folder / component / safetensors_name).unlink()
    weights = sd1_folder / component / pickled_name
    torch.save({"w": torch.zeros(1), "x": _Call(os.system, f"touch '{marker}'")}, weights)
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(sd1_folder)
    message = str(info.value)
    assert str(weights) in message
    assert "could run arbitrary code (it refers to posix.system)" in message
    assert "weights_only" not in message
    assert not marker.exists()


def test_diffusers_folder_prefers_safetensors_over_a_hostile_bin(sd1_folder, tiny_pipelines):
    marker = sd1_folder.parent / "executed"
    hostile = {"x": _Call(os.system, f"touch '{marker}'")}
    for component in ("unet", "vae", "text_encoder"):
        torch.save(hostile, sd1_folder / component / _WEIGHTS[component][1])
    loaded = load_checkpoint(sd1_folder)
    assert_same_state(tiny_pipelines["sd1"].unet, loaded.model.unet)
    assert not marker.exists()


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_diffusers_folder_with_pickled_weights_loads_exactly(tiny_pipelines, tmp_path, variant):
    pipeline = tiny_pipelines[variant]
    folder = write_diffusers_folder(pipeline, tmp_path / variant)
    for component, (safetensors_name, pickled_name) in _WEIGHTS.items():
        if not (folder / component).is_dir():
            continue
        tensors = load_file(folder / component / safetensors_name)
        if component == "text_encoder":  # transformers before 5.6 nested CLIP under text_model.
            tensors = {f"text_model.{key}": value for key, value in tensors.items()}
        torch.save(tensors, folder / component / pickled_name)
        (folder / component / safetensors_name).unlink()
    loaded = load_checkpoint(folder)
    assert_same_state(pipeline.unet, loaded.model.unet)
    assert_same_state(pipeline.vae, loaded.vae.vae)
    for expected, encoder in zip(pipeline.text_encoders, loaded.clip.encoders, strict=True):
        assert_same_state(expected, encoder.model)
