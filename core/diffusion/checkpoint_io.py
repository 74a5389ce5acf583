"""Read tensors from model files without ever executing anything stored in them.

``.safetensors`` holds only a JSON header and raw tensor bytes. Legacy pickled files (``.ckpt``,
``.pt``, ``.pth``, ``.bin``) are opened with ``torch.load(weights_only=True)``, whose restricted
unpickler accepts tensors and plain containers and refuses every other object, so a hostile file
fails instead of running code. When it refuses a file, the file's opcodes are read (never run) to
name the objects it refers to, so the user hears that the file wanted to run code, not that it
is damaged. The numpy numbers old Lightning checkpoints store (``global_step``) are allowed.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import _compat_pickle
import pickletools
import re
import zipfile
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from core.diffusion.errors import ModelLoadError
from core.diffusion.model_paths import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Return every tensor of a single-file checkpoint, keyed by its stored name, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such file.", "Check the name and the model folders.")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _read_pickled(path)
    raise ModelLoadError(
        path,
        f"'{suffix}' is not a model file type LatentLoom reads.",
        "Expected .safetensors (preferred) or a legacy .ckpt/.pt/.pth/.bin.",
    )


def _read_safetensors(path: Path) -> StateDict:
    """Every tensor of the file as a view of its memory map: nothing is read until used."""
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            path,
            f"is not a readable .safetensors file ({exc}).",
            "It is truncated, corrupt or not a model; download or copy it again.",
        ) from exc


class CastingView(Mapping[str, torch.Tensor]):
    """A state dict whose floating-point tensors come out in ``dtype``, one at a time.

    A tensor already in ``dtype`` is handed out as it is (for a ``.safetensors`` file, a view of
    its memory map: no copy at all). Another one is converted as it is read; from a
    ``.safetensors`` file it is read with ``pread`` rather than through the map, so the stored
    bytes are only held while that one tensor converts and the file's pages never pile up in
    the process. Loading a half-precision file into another precision therefore holds one copy
    of the weights, in the compute precision, and never a float32 one.
    """

    def __init__(
        self, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype, path: Path | None = None
    ) -> None:
        self._tensors, self.dtype = tensors, dtype
        self._path = (
            path if path is not None and path.suffix.lower() in SAFETENSORS_SUFFIXES else None
        )
        self._reader: Any = None
        # Converters may ask for a tensor twice; it is converted once.
        self._converted: dict[str, torch.Tensor] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        tensor = self._tensors[key]
        if not tensor.is_floating_point() or tensor.dtype == self.dtype:
            return tensor
        if key not in self._converted:
            if self._path is not None:
                if self._reader is None:
                    self._reader = safe_open(str(self._path), framework="pt", backend="pread")
                self._converted[key] = self._reader.get_tensor(key).to(self.dtype)
            else:
                self._converted[key] = tensor.to(self.dtype)
        return self._converted[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


def _read_pickled(path: Path) -> StateDict:
    return _tensors_of(path, read_pickled_object(path))


def read_pickled_object(path: str | Path) -> object:
    """What a legacy pickled file holds (tensors in plain containers: dicts, lists, tuples,
    numbers, strings), read without running code: anything else is refused, by name."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler refused the file, or it is damaged
        refused = _foreign_globals(path)
        if not refused:
            raise _unreadable(path, exc) from exc
        # Not chained: torch's own message advises turning the protection off.
        raise ModelLoadError(
            path,
            "holds Python objects other than tensors, which LatentLoom refuses to load because "
            f"unpickling them could run arbitrary code (it refers to {', '.join(refused)}).",
            "Use a .safetensors version of this model, or convert the file with a tool you "
            "trust in an isolated environment.",
        ) from None
    return loaded


def _numpy_globals() -> list[tuple[Any, str]]:
    """The numpy names old Lightning ``.ckpt`` files need for ``global_step`` and small arrays.

    They rebuild a number or an array of numbers from bytes and call nothing else. Each is listed
    under the module numpy 1.x wrote and the one numpy 2 writes, so files from both load; they
    are allowed only for the duration of our own ``torch.load``.
    """
    import numpy

    multiarray = numpy._core.multiarray if hasattr(numpy, "_core") else numpy.core.multiarray
    allowed: list[tuple[Any, str]] = [
        (numpy.dtype, "numpy.dtype"),
        (numpy.ndarray, "numpy.ndarray"),
    ]
    for package in ("numpy.core", "numpy._core"):
        allowed.append((multiarray.scalar, f"{package}.multiarray.scalar"))
        allowed.append((multiarray._reconstruct, f"{package}.multiarray._reconstruct"))
    for code in _NUMPY_NUMBER_CODES:
        kind = type(numpy.dtype(code))
        allowed.append((kind, f"{kind.__module__}.{kind.__qualname__}"))
    return allowed


#: Booleans, integers, floats and complex numbers: the dtypes a scalar or array may carry.
_NUMPY_NUMBER_CODES = "?bBhHiIlLqQefdgFDG"

#: What ``torch.save`` writes for tensors and their containers (torch's own allow-list). A file
#: the restricted unpickler refused although it names nothing else is damaged, not dangerous.
_TENSOR_MACHINERY = re.compile(
    r"torch\._utils\._rebuild_\w+|torch\._tensor\._rebuild_from_type_v2"
    r"|torch(\.storage)?\.\w*Storage|torch\.(Size|device|Tensor|nn\.parameter\.Parameter)"
    r"|torch\.serialization\._get_layout|torch\.(bool|half|double|b?float\w*|u?int\d+)"
    r"|torch\.(complex\w*|q\w+|per_\w+)"
    r"|collections\.(OrderedDict|Counter)|_codecs\.encode|builtins\.(set|bytearray|complex)"
)

#: A legacy (non-zip) ``torch.save`` file is five pickles in a row, then raw tensor bytes.
_LEGACY_PICKLES = 5

_STRING_OPCODES = frozenset(
    {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING"}
    | {"SHORT_BINSTRING"}
)


def _foreign_globals(path: Path, limit: int = 4) -> list[str]:
    """The first few distinct objects a pickled file refers to that are not tensor machinery.

    The file's opcodes are read with ``pickletools``, which decodes and never executes, so this
    names what a hostile file would have run even where torch stops at an earlier opcode.
    """
    allowed = {name for _, name in _numpy_globals()}
    found: list[str] = []
    try:
        for name in _referenced_globals(path):
            if name in allowed or _TENSOR_MACHINERY.fullmatch(name) or name in found:
                continue
            found.append(name)
            if len(found) == limit:
                break
    except Exception:  # a damaged stream ends the search; what it named so far still counts
        pass
    return found


def _referenced_globals(path: Path) -> Iterator[str]:
    """``module.name`` of every global the pickles of a zip or legacy torch file refer to.

    Only complete pickles count, so random bytes that happen to decode as a few opcodes are
    never taken for a reference to code.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".pkl"):
                    with archive.open(member) as stream:
                        yield from _globals_in_pickle(stream)
        return
    with path.open("rb") as stream:
        for _ in range(_LEGACY_PICKLES):
            yield from _globals_in_pickle(stream)


def _globals_in_pickle(stream: IO[bytes]) -> list[str]:
    """The globals of one pickle (GLOBAL, INST and STACK_GLOBAL), in the order they appear.

    Raises ``ValueError`` (from ``pickletools``) when the stream ends or breaks before STOP.
    """
    protocol = 0
    found: list[str] = []
    pushed: deque[str | None] = deque([None, None], maxlen=2)  # the last two values pushed
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name == "PROTO":
            protocol = int(arg)
        elif name in ("GLOBAL", "INST"):
            module, _, attribute = str(arg).partition(" ")
            found.append(_python3_name(module, attribute, protocol))
        elif name == "STACK_GLOBAL":
            module, attribute = pushed
            if module is None or attribute is None:
                found.append("an object whose name is computed while unpickling")
            else:
                found.append(f"{module}.{attribute}")
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif opcode.stack_after:
            pushed.append(str(arg) if name in _STRING_OPCODES else None)
    return found


def _python3_name(module: str, attribute: str, protocol: int) -> str:
    """Python 2 names that protocols 0–2 store (``commands.Popen``) as Python 3 reads them."""
    if protocol < 3:
        if (module, attribute) in _compat_pickle.NAME_MAPPING:
            module, attribute = _compat_pickle.NAME_MAPPING[(module, attribute)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{attribute}"


def _unreadable(path: Path, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        path,
        f"is not a readable PyTorch checkpoint ({type(exc).__name__}: {_first_line(exc)}).",
        "It is truncated, corrupt or not a model; download or copy it again.",
    )


def _tensors_of(path: Path, loaded: object) -> StateDict:
    """Unwrap Lightning-style ``{"state_dict": {...}}`` containers and keep the tensors."""
    while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelLoadError(
            path,
            f"holds a {type(loaded).__name__}, not a dictionary of named tensors.",
            "Expected a Stable Diffusion, VAE or LoRA checkpoint.",
        )
    tensors = {
        key: value
        for key, value in loaded.items()
        if isinstance(key, str) and isinstance(value, torch.Tensor)
    }
    # One level of nesting, named "outer.inner": AUTOMATIC1111's textual-inversion files keep
    # their vectors in {"string_to_param": {"*": tensor}}.
    for key, value in loaded.items():
        if isinstance(key, str) and isinstance(value, dict):
            for inner, tensor in value.items():
                if isinstance(inner, str) and isinstance(tensor, torch.Tensor):
                    tensors.setdefault(f"{key}.{inner}", tensor)
    if not tensors:
        raise ModelLoadError(path, "holds no tensors.", "Expected model weights.")
    return tensors


def _first_line(exc: BaseException) -> str:
    """The informative line of an exception, without torch's preamble about ``weights_only``
    (whose advice to turn the protection off is never what a user should do)."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    for line in text.splitlines():
        line = line.strip()
        if line and "weights_only" not in line and not line.startswith(_TORCH_BOILERPLATE):
            # Its first sentence: torch appends requests to report its own internals.
            sentence = line.split(". ", 1)[0].split("  (", 1)[0].rstrip(".")
            return sentence if len(sentence) <= 200 else sentence[:197] + "..."
    return type(exc).__name__


_TORCH_BOILERPLATE = ("Check the documentation", "Please file an issue", "Weights only load")
