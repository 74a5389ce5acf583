"""A UNet run through ``torch.compile`` (the Compile Model node), opt-in.

Inductor's on-disk caches live in the user's cache folder (``TORCHINDUCTOR_CACHE_DIR``, by
default ``~/.cache/latentloom/inductor``). Two ways to compile, measured on the demo model
(bfloat16, one thread, a quiet 2-core AVX512-BF16 CPU; docs/performance.md):

- **weights as inputs** (the default): the compiled graph is stored in torch's FX graph cache,
  so a later process finds it: 71 s to compile the first time, 7 s in every later process,
  steps 1.4× faster than eager;
- **frozen weights** (``freeze``): inductor folds the weights into the graph as constants, so
  oneDNN can pre-pack them once instead of on every call: steps 1.9× faster, but torch caches
  no frozen graph, so every new process compiles again (83 s, then 44 s with the kernel code
  cached).

Graphs are compiled per shape (``dynamic=False``): a latent size and batch (classifier-free
guidance doubles it, the guidance interval halves it again) is compiled the first time it is
met. With ``background`` the sampler keeps running eagerly while a thread compiles, and
switches once a shape is ready (the editor's first run is not held up); without it the first
call of each shape waits for its compilation (headless batches, where every later run gains).
A compilation that fails leaves the UNet eager, with the reason in ``failure``.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: The cache folder's override; ``$XDG_CACHE_HOME/latentloom`` or ``~/.cache/latentloom`` else.
CACHE_ENVIRONMENT = "LATENTLOOM_CACHE_DIR"
BACKENDS = ("inductor",)


def cache_folder() -> Path:
    """The per-user folder for caches that may be deleted at any time."""
    chosen = os.environ.get(CACHE_ENVIRONMENT)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "latentloom"


def configure_inductor() -> None:
    """Inductor settings for inference, its on-disk caches under ``cache_folder()`` unless
    ``$TORCHINDUCTOR_CACHE_DIR`` names another folder than torch's default.

    torch writes its default (a folder in /tmp, emptied at reboot) into the environment the
    first time anything asks for it, which importing diffusers already does; that value is
    replaced, a folder the user chose is kept."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_folder() / "inductor")
    import torch._inductor.config as inductor

    inductor.fx_graph_cache = True


@dataclass(frozen=True)
class CompileSettings:
    backend: str = "inductor"
    background: bool = True
    #: Fold the weights into the graph: faster steps, compiled again in every process.
    freeze: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"backend {self.backend!r} is not supported; choose one of {', '.join(BACKENDS)}"
            )


def _compile_with_torch(unet: Any, settings: CompileSettings) -> Callable[..., Any]:
    configure_inductor()
    return torch.compile(unet, backend=settings.backend, dynamic=False)


#: Held while a shape compiles. Whether weights freeze is inductor's global setting, read by
#: dynamo as it traces the first call of a shape (passed as a per-compile option it reaches
#: inductor only, after the weights were made graph inputs, and nothing freezes), so one
#: compilation at a time sets it.
_COMPILING = threading.Lock()


def _first_call(
    compiled: Callable[..., Any], settings: CompileSettings, *args: Any, **kwargs: Any
) -> Any:
    """A shape's first call through ``compiled``, which compiles it, with ``settings.freeze``."""
    import torch._inductor.config as inductor

    with _COMPILING, inductor.patch(freezing=settings.freeze):
        return compiled(*args, **kwargs)


def shape_key(value: Any) -> Hashable:
    """What a compiled graph is specialised on: every tensor's shape and dtype, nested in
    tuples, lists and dicts, and the other values themselves."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), value.device.type)
    if isinstance(value, dict):
        return ("dict", tuple((k, shape_key(v)) for k, v in sorted(value.items())))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(shape_key(v) for v in value))
    return ("value", repr(value))


class CompiledUnet:
    """A UNet whose calls go through ``torch.compile`` once their shape is compiled."""

    #: Builds the compiled callable; tests replace it, so no test compiles for real.
    compiler: Callable[[Any, CompileSettings], Callable[..., Any]] = staticmethod(
        _compile_with_torch
    )

    def __init__(self, unet: Any, settings: CompileSettings) -> None:
        self.__dict__["unet"] = unet
        self.__dict__["settings"] = settings
        self.__dict__["_compiled"] = None
        self.__dict__["_ready"] = set()
        self.__dict__["_pending"] = {}
        self.__dict__["_lock"] = threading.Lock()
        self.__dict__["failure"] = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["unet"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unet, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledUnet:
        """A wrapper around a copy of the UNet (how LoRAs patch a model), compiled afresh."""
        import copy

        return CompiledUnet(copy.deepcopy(self.unet, memo), self.settings)

    @property
    def compiled_shapes(self) -> int:
        """How many input shapes have a compiled graph ready."""
        return len(self.__dict__["_ready"])

    def _compiled_callable(self) -> Callable[..., Any]:
        with self.__dict__["_lock"]:
            if self.__dict__["_compiled"] is None:
                self.__dict__["_compiled"] = type(self).compiler(self.unet, self.settings)
            return self.__dict__["_compiled"]

    def __call__(self, sample: torch.Tensor, timestep: Any, **kwargs: Any) -> Any:
        key = shape_key((sample, timestep, kwargs))
        ready: set[Hashable] = self.__dict__["_ready"]
        if key in ready:
            return self._compiled_callable()(sample, timestep, **kwargs)
        if self.failure is not None:
            return self.unet(sample, timestep, **kwargs)
        if not self.settings.background:
            try:
                output = _first_call(
                    self._compiled_callable(), self.settings, sample, timestep, **kwargs
                )
            except Exception as exc:
                self._failed(exc)
                return self.unet(sample, timestep, **kwargs)
            ready.add(key)
            return output
        self._compile_in_background(key, sample, timestep, kwargs)
        return self.unet(sample, timestep, **kwargs)

    def wait(self, timeout: float | None = None) -> None:
        """Blocks until the background compilations started so far have finished."""
        for thread in list(self.__dict__["_pending"].values()):
            thread.join(timeout)

    def _failed(self, exc: BaseException) -> None:
        self.__dict__["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]

    def _compile_in_background(
        self, key: Hashable, sample: torch.Tensor, timestep: Any, kwargs: dict[str, Any]
    ) -> None:
        pending: dict[Hashable, threading.Thread] = self.__dict__["_pending"]
        with self.__dict__["_lock"]:
            if key in pending:
                return
            # The thread compiles on copies: the sampler goes on changing its own tensors.
            args = _detached((sample, timestep, kwargs))
            grad_enabled, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

            def compile_shape() -> None:
                try:
                    with torch.inference_mode(inference), torch.set_grad_enabled(grad_enabled):
                        _first_call(
                            self._compiled_callable(), self.settings, args[0], args[1], **args[2]
                        )
                except Exception as exc:
                    self._failed(exc)
                    return
                self.__dict__["_ready"].add(key)

            thread = threading.Thread(target=compile_shape, name="unet-compile", daemon=True)
            pending[key] = thread
        thread.start()


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v) for v in value)
    return value
