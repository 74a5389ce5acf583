"""A corpus of malformed and hostile inputs: workflow files and model files a user might open.

Every case is written by code, so the corpus costs nothing in the repository and the large or
dangerous files (a PNG whose text chunk inflates to 200 MB, pickles that would run a shell
command) exist only in a temporary folder while the tests run. Run it as a script to look at
the files::

    python -m tests.safety.corpus OUT_DIR

Each case says what opening and running it must give: the exit code of ``main.py validate``
and of ``main.py run``, and words that the error must contain (the file, the node or the
field at fault). Hostile cases point their payload at ``markers/``: a file there means code ran.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Exit codes of main.py.
OK, FAILED, INVALID = 0, 1, 2


@dataclass(frozen=True)
class Sandbox:
    """The folder a case is written into and run in."""

    root: Path

    @property
    def cases(self) -> Path:
        return self.root / "cases"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    @property
    def out(self) -> Path:
        """The output folder, nested so that ``../..`` from it still lands in the sandbox."""
        return self.root / "a" / "b" / "c" / "out"


@dataclass(frozen=True)
class Case:
    """One malformed input and what LatentLoom must make of it."""

    name: str
    write: Callable[[Sandbox], Path]
    validate_exit: int
    run_exit: int
    #: Each error line must contain one of these (case-insensitive).
    mentions: tuple[str, ...] = ()
    kind: str = "workflow"
    #: Files the run may create inside the output folder (relative paths); None: no check.
    outputs: tuple[str, ...] | None = field(default=None)


# --- building blocks ----------------------------------------------------------------------


def _text(name: str, text: str | bytes) -> Callable[[Sandbox], Path]:
    def write(box: Sandbox) -> Path:
        path = box.cases / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return path

    return write


def _doc(nodes: list[Any], links: list[Any] | None = None, **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"format": "latentloom", "version": 2, "nodes": nodes}
    data["links"] = links if links is not None else []
    data.update(top)
    return data


def _node(nid: Any, type_id: str, **params: Any) -> dict[str, Any]:
    return {"id": nid, "type": type_id, "params": params}


def _json(name: str, data: Any) -> Callable[[Sandbox], Path]:
    return _text(name, json.dumps(data))


def _gradient_to_save(**save: Any) -> dict[str, Any]:
    """A picture made without any model, written by Save Image."""
    return _doc(
        [_node(1, "GradientImage", width=8, height=8), _node(2, "SaveImage", **save)],
        [[1, "IMAGE", 2, "images"]],
    )


def _linked_prefix(prefix: str) -> dict[str, Any]:
    """Save Image whose prefix arrives through a link from a Text node (seen only at run)."""
    return _doc(
        [
            _node(1, "GradientImage", width=8, height=8),
            _node(2, "SaveImage"),
            _node(3, "String", value=prefix),
        ],
        [[1, "IMAGE", 2, "images"], [3, "STRING", 2, "filename_prefix"]],
    )


def _save_text(filename: str, linked: bool = False) -> dict[str, Any]:
    """Save Text writing "hello"; its file name is a widget, or arrives by a link."""
    nodes = [_node(1, "String", value="hello"), _node(2, "SaveText", filename=filename)]
    links = [[1, "STRING", 2, "text"]]
    if linked:
        nodes[1] = _node(2, "SaveText")
        nodes.append(_node(3, "String", value=filename))
        links.append([3, "STRING", 2, "filename"])
    return _doc(nodes, links)


def _prompt_flow(text: str, **sampler: Any) -> dict[str, Any]:
    """The demo model's text encoder on ``text``, through one sampler step to a preview."""
    return _doc(
        [
            _node(1, "LoadCheckpoint", ckpt_name="latentloom-shapes"),
            _node(2, "CLIPTextEncode", text=text),
            _node(3, "CLIPTextEncode", text=""),
            _node(4, "EmptyLatentImage", width=64, height=64, batch_size=1),
            _node(
                5,
                "KSampler",
                **(
                    {
                        "seed": 0,
                        "steps": 1,
                        "cfg": 2.0,
                        "sampler_name": "euler",
                        "scheduler": "normal",
                    }
                    | sampler
                ),
            ),
            _node(6, "VAEDecode"),
            _node(7, "PreviewImage"),
        ],
        [
            [1, "CLIP", 2, "clip"],
            [1, "CLIP", 3, "clip"],
            [1, "MODEL", 5, "model"],
            [1, "VAE", 4, "vae"],
            [1, "VAE", 6, "vae"],
            [2, "CONDITIONING", 5, "positive"],
            [3, "CONDITIONING", 5, "negative"],
            [4, "LATENT", 5, "latent_image"],
            [5, "LATENT", 6, "samples"],
            [6, "IMAGE", 7, "images"],
        ],
    )


def _latent_flow(**latent: Any) -> dict[str, Any]:
    return _doc(
        [
            _node(1, "LoadCheckpoint", ckpt_name="latentloom-shapes"),
            _node(2, "EmptyLatentImage", **({"width": 64, "height": 64} | latent)),
            _node(3, "VAEDecode"),
            _node(4, "PreviewImage"),
        ],
        [
            [1, "VAE", 3, "vae"],
            [1, "VAE", 2, "vae"],
            [2, "LATENT", 3, "samples"],
            [3, "IMAGE", 4, "images"],
        ],
    )


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A 1×1 grey PNG with the given extra chunks before its image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    parts += [chunk(kind, data) for kind, data in chunks]
    parts += [chunk(b"IDAT", pixels), chunk(b"IEND", b"")]
    return b"".join(parts)


def _ztxt(key: str, text: bytes) -> tuple[bytes, bytes]:
    return b"zTXt", key.encode("latin-1") + b"\x00\x00" + zlib.compress(text, 9)


def _itxt(key: str, text: str) -> tuple[bytes, bytes]:
    return b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")


def _inflating_png(box: Sandbox) -> Path:
    """A PNG whose workflow chunk is 200 KB on disk and 200 MB once inflated."""
    compressor = zlib.compressobj(9)
    block = b" " * (1 << 20)
    data = b"".join(compressor.compress(block) for _ in range(200)) + compressor.flush()
    chunk = b"latentloom".ljust(10) + b"\x00\x00" + data
    path = box.cases / "inflating.png"
    path.write_bytes(_png([(b"zTXt", chunk)]))
    return path


def _deep(name: str, depth: int) -> Callable[[Sandbox], Path]:
    nested = "[" * depth + "]" * depth
    return _text(name, '{"format": "latentloom", "version": 2, "nodes": ' + nested + "}")


# --- hostile and broken model files --------------------------------------------------------


class _Payload:
    """Pickles to a call of ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _checkpoint(name: str, make: Callable[[Sandbox, Path], None]) -> Callable[[Sandbox], Path]:
    """A model file ``name`` in the checkpoints folder and a workflow loading it."""

    def write(box: Sandbox) -> Path:
        target = box.models / "checkpoints" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        make(box, target)
        flow = _doc(
            [
                _node(1, "LoadCheckpoint", ckpt_name=name),
                _node(2, "EmptyLatentImage", width=16, height=16),
                _node(3, "VAEDecode"),
                _node(4, "PreviewImage"),
            ],
            [
                [1, "VAE", 3, "vae"],
                [1, "VAE", 2, "vae"],
                [2, "LATENT", 3, "samples"],
                [3, "IMAGE", 4, "images"],
            ],
        )
        return _json(f"load_{Path(name).name}.json", flow)(box)

    return write


def _torch_save(obj_of: Callable[[Sandbox], Any], legacy: bool = False) -> Callable[..., None]:
    def make(box: Sandbox, path: Path) -> None:
        import torch

        torch.save(obj_of(box), path, _use_new_zipfile_serialization=not legacy)

    return make


def _raw_pickle(obj_of: Callable[[Sandbox], Any], protocol: int) -> Callable[..., None]:
    def make(box: Sandbox, path: Path) -> None:
        path.write_bytes(pickle.dumps(obj_of(box), protocol=protocol))

    return make


def _marker(box: Sandbox, name: str) -> str:
    box.markers.mkdir(parents=True, exist_ok=True)
    return str(box.markers / name)


def _os_system(box: Sandbox) -> Any:
    import os

    return {"state_dict": _Payload(os.system, f"touch {_marker(box, 'os_system')}")}


def _eval(box: Sandbox) -> Any:
    import builtins

    code = f"open({_marker(box, 'eval')!r}, 'w').close()"
    return {"state_dict": {"x": _Payload(builtins.eval, code)}}


def _popen(box: Sandbox) -> Any:
    import subprocess

    return _Payload(subprocess.Popen, ["touch", _marker(box, "popen")])


def _exec_in_list(box: Sandbox) -> Any:
    import builtins

    code = f"open({_marker(box, 'exec')!r}, 'w').close()"
    return [1, 2, {"weights": _Payload(builtins.exec, code)}]


def _bytes(data: bytes) -> Callable[..., None]:
    def make(box: Sandbox, path: Path) -> None:
        path.write_bytes(data)

    return make


def _safetensors_header(header: bytes, declared: int | None = None) -> bytes:
    size = len(header) if declared is None else declared
    return struct.pack("<Q", size) + header


def _tensors(make_tensors: Callable[[], dict[str, Any]], suffix: str) -> Callable[..., None]:
    def make(box: Sandbox, path: Path) -> None:
        import torch
        from safetensors.torch import save_file

        tensors = make_tensors()
        if suffix == ".safetensors":
            save_file(tensors, path)
        else:
            torch.save(tensors, path)

    return make


def _unrelated_tensors() -> dict[str, Any]:
    import torch

    return {"linear.weight": torch.zeros(4, 4), "linear.bias": torch.zeros(4)}


def _tiny_sd1(with_numpy_step: bool, truncate: bool = False) -> Callable[..., None]:
    def make(box: Sandbox, path: Path) -> None:
        import numpy as np
        import torch

        from core.diffusion.families import ModelFamily
        from tests.helpers.tiny_models import ldm_state_dict, make_tiny_pipeline

        tensors = ldm_state_dict(make_tiny_pipeline(ModelFamily.SD1))
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, path)
        else:
            content: dict[str, Any] = {"state_dict": tensors}
            if with_numpy_step:  # as PyTorch Lightning wrote them for SD 1.x
                content["global_step"] = np.int64(470000)
                content["epoch"] = np.int64(6)
            torch.save(content, path)
        if truncate:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])

    return make


def _wrong_shapes() -> dict[str, Any]:
    import torch

    from core.diffusion.families import ModelFamily
    from tests.helpers.tiny_models import ldm_state_dict, make_tiny_pipeline

    tensors = ldm_state_dict(make_tiny_pipeline(ModelFamily.SD1))
    key = "model.diffusion_model.input_blocks.0.0.weight"
    tensors[key] = torch.zeros(3, 3)
    return tensors


def _diffusers_with_payload(box: Sandbox, folder: Path) -> None:
    import os

    import torch

    from core.diffusion.families import ModelFamily
    from tests.helpers.tiny_models import make_tiny_pipeline, write_diffusers_folder

    write_diffusers_folder(make_tiny_pipeline(ModelFamily.SD1), folder)
    weights = folder / "text_encoder" / "model.safetensors"
    weights.unlink()
    payload = {"x": _Payload(os.system, f"touch {_marker(box, 'diffusers_bin')}")}
    torch.save(payload, folder / "text_encoder" / "pytorch_model.bin")


def _zip_without_data(box: Sandbox, path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))


def _directory(box: Sandbox, path: Path) -> None:
    path.mkdir()


# fmt: off
# --- the corpus ----------------------------------------------------------------------------

_ESCAPES = ("filename_prefix", "output folder")


def _refused(name: str, write: Callable[[Sandbox], Path], *mentions: str, **kw: Any) -> Case:
    """Refused when opened or validated: nothing runs (exit 2 from validate and from run)."""
    return Case(name, write, INVALID, INVALID, mentions, **kw)


def _fails_at_run(name: str, write: Callable[[Sandbox], Path], *mentions: str, **kw: Any) -> Case:
    """Valid on paper; a node refuses its input when the run reaches it (exit 1)."""
    return Case(name, write, OK, FAILED, mentions, **kw)


def _abs(name: str, make: Callable[[Path], dict[str, Any]]) -> Callable[[Sandbox], Path]:
    """A workflow that names an absolute path inside the sandbox."""
    return lambda box: _json(name, make(box.root))(box)


def _workflow_cases() -> list[Case]:
    flow, ui = _prompt_flow, {"last_node_id": 2, "links": [[1, 2]]}
    a1111 = b"???\nSteps: many, Sampler: nonsense, Size: 99999999x-1, Seed: x"
    return [
        # Not a workflow at all.
        _refused("empty", _text("empty.json", ""), "empty.json"),
        _refused("null", _text("null.json", "null"), "null.json"),
        _refused("list", _text("list.json", "[1, 2]"), "list.json"),
        _refused("number", _text("number.json", "42"), "number.json"),
        _refused("not_utf8", _text("latin1.json", b'{"a": "\xe9\xff"}'), "latin1.json"),
        _refused("truncated_json", _text("cut.json", '{"format": "latentloom", "nodes": [{'),
                 "cut.json"),
        _refused("deep_nesting", _deep("deep.json", 20000), "deep.json"),
        _refused("binary", _text("noise.json", bytes(range(256)) * 8), "noise.json"),
        _refused("missing_file", lambda box: box.cases / "nowhere.json", "nowhere.json"),
        _refused("directory", lambda box: box.cases / "folder.json", "folder.json"),
        # Wrong document shapes.
        _refused("nodes_is_number", _text("v1_nodes_5.json",
                 '{"format":"latentloom","version":1,"nodes":5}'), "nodes"),
        _refused("version_true", _json("v_true.json", _gradient_to_save() | {"version": True}),
                 "version"),
        _refused("version_text", _json("v_text.json", _gradient_to_save() | {"version": "2"}),
                 "version"),
        _refused("version_future", _json("v_99.json", _gradient_to_save() | {"version": 99}),
                 "version"),
        _refused("version_negative", _json("v_neg.json", _gradient_to_save() | {"version": -1}),
                 "version"),
        _refused("node_not_object", _json("node_str.json", _doc(["KSampler"])), "node"),
        _refused("node_without_id", _json("no_id.json", _doc([{"type": "GradientImage"}])),
                 "id"),
        _refused("node_id_text", _json("id_text.json", _doc([_node("one", "GradientImage")])),
                 "id"),
        _refused("duplicate_ids", _json("dup_ids.json", _doc(
            [_node(1, "GradientImage"), _node(1, "SaveImage")])), "1"),
        _refused("params_not_object", _json("params_list.json", _doc(
            [{"id": 1, "type": "GradientImage", "params": [8, 8]}])), "params"),
        _refused("links_not_list", _json("links_obj.json", _gradient_to_save() | {"links": {}}),
                 "links"),
        _refused("link_wrong_arity", _json("link_arity.json", _gradient_to_save() | {
            "links": [[1, "IMAGE", 2]]}), "link"),
        _refused("link_to_missing_node", _json("link_missing.json", _gradient_to_save() | {
            "links": [[9, "IMAGE", 2, "images"]]}), "9", "images"),
        _refused("link_bad_output", _json("link_output.json", _gradient_to_save() | {
            "links": [[1, "LATENT", 2, "images"]]}), "LATENT", "images"),
        _refused("link_cycle", _json("cycle.json", _doc(
            [_node(1, "TextJoin"), _node(2, "TextJoin"), _node(3, "SaveText", filename="t")],
            [[1, "STRING", 2, "a"], [2, "STRING", 1, "a"], [2, "STRING", 3, "text"]])),
                 "cycle", "loop"),
        # Graphs that would run nothing.
        _refused("only_unknown_output", _json("unknown_out.json", _doc(
            [_node(1, "GradientImage"), _node(2, "SomeCustomSaveNode")])), "SomeCustomSaveNode"),
        _refused("no_output_node", _json("no_output.json", _doc([_node(1, "GradientImage")])),
                 "output"),
        _refused("no_nodes", _json("no_nodes.json", _doc([])), "output", "node"),
        # Values a widget does not take.
        _refused("width_text", _json("width_text.json", _doc(
            [_node(1, "GradientImage", width="wide"), _node(2, "PreviewImage")],
            [[1, "IMAGE", 2, "images"]])), "width"),
        _refused("nan", _json("nan.json", flow("red", cfg=float("nan"))), "cfg"),
        _refused("infinity", _json("inf.json", flow("red", denoise=float("inf"))), "denoise"),
        _refused("huge_int", _json("huge_int.json", flow("red", seed=10**400)), "seed"),
        _refused("too_many_digits", _text("digits.json", json.dumps(flow("red")).replace(
            '"seed": 0', '"seed": ' + "9" * 5000)), "digits.json"),
        _refused("steps_negative", _json("steps_neg.json", flow("red", steps=-5)), "steps"),
        _refused("width_17", _json("width17.json", _latent_flow(width=17, height=23)),
                 "width", "height"),
        # Files written outside the output folder, or over other files.
        _refused("prefix_parent", _json("prefix_up.json", _gradient_to_save(
            filename_prefix="../../escaped")), *_ESCAPES, outputs=()),
        _refused("prefix_absolute", _abs("prefix_abs.json", lambda root: _gradient_to_save(
            filename_prefix=str(root / "absolute" / "X"))), *_ESCAPES, outputs=()),
        _refused("prefix_nul", _json("prefix_nul.json", _gradient_to_save(
            filename_prefix="a\x00b")), "filename_prefix", outputs=()),
        _refused("prefix_long", _json("prefix_long.json", _gradient_to_save(
            filename_prefix="x" * 300)), "filename_prefix", outputs=()),
        _refused("prefix_reserved", _json("prefix_con.json", _gradient_to_save(
            filename_prefix="CON")), "filename_prefix", outputs=()),
        Case("prefix_pattern", _json("prefix_glob.json", _gradient_to_save(
            filename_prefix="shot[1]")), OK, OK, outputs=("shot[1]_00001.png",)),
        Case("prefix_subfolder", _json("prefix_sub.json", _gradient_to_save(
            filename_prefix="day1/shot")), OK, OK, outputs=("day1/shot_00001.png",)),
        _fails_at_run("prefix_linked_parent", _json("linked_up.json", _linked_prefix(
            "../../linked")), *_ESCAPES, outputs=()),
        _fails_at_run("prefix_linked_absolute", _abs("linked_abs.json", lambda root:
            _linked_prefix(str(root / "linked_abs"))), *_ESCAPES, outputs=()),
        _refused("text_parent", _json("text_up.json", _save_text("../../../notes")),
                 "filename", outputs=()),
        _refused("text_absolute", _abs("text_abs.json", lambda root: _save_text(
            str(root / "notes"))), "filename", outputs=()),
        _fails_at_run("text_linked_parent", _json("text_linked.json", _save_text(
            "../x", linked=True)), "filename", outputs=()),
        # Prompts.
        _refused("prompt_surrogate", _text("surrogate.json", json.dumps(
            flow("a red \ud800 circle"))), "text"),
        _refused("prompt_huge", _json("prompt_huge.json", flow("red circle " * 50_000)),
                 "text"),
        # Pictures.
        _refused("png_no_workflow", _text("plain.png", _png([])), "plain.png"),
        _refused("png_damaged", _text("damaged.png", _png([])[:40]), "damaged.png"),
        _refused("png_inflating", _inflating_png, "inflating.png"),
        _refused("png_bad_workflow", _text("bad_chunk.png", _png(
            [_itxt("latentloom", "{nope")])), "bad_chunk.png"),
        _refused("png_a1111_garbage", _text("a1111.png", _png(
            [(b"tEXt", b"parameters\x00" + a1111)])), "a1111.png", "ckpt_name"),
        # ComfyUI files gone wrong.
        _refused("comfy_api_garbage", _json("api.json", {"1": {"class_type": 5, "inputs": []}}),
                 "api.json", "5"),
        _refused("comfy_ui_garbage", _json("ui.json", ui | {"nodes": [
            {"id": "x", "type": None, "widgets_values": 5}]}), "ui.json"),
    ]


def _checkpoint_cases() -> list[Case]:
    def case(name: str, make: Callable[..., None], validate: int = OK, run: int = FAILED) -> Case:
        return Case(f"ckpt_{name}", _checkpoint(name, make), validate, run, (name,),
                    kind="checkpoint")

    return [
        case("empty.safetensors", _bytes(b"")),
        case("random.safetensors", _bytes(bytes(range(256)) * 64)),
        case("huge_header.safetensors", _bytes(_safetensors_header(b"{}", declared=1 << 60))),
        case("bad_header.safetensors", _bytes(_safetensors_header(b"{not json"))),
        case("truncated.safetensors", _tiny_sd1(False, truncate=True)),
        case("unrelated.safetensors", _tensors(_unrelated_tensors, ".safetensors")),
        case("wrong_shapes.safetensors", _tensors(_wrong_shapes, ".safetensors")),
        case("folder.safetensors", _directory, validate=INVALID, run=INVALID),
        case("os_system.ckpt", _torch_save(_os_system)),
        case("os_system_legacy.ckpt", _torch_save(_os_system, legacy=True)),
        case("eval.pt", _torch_save(_eval)),
        case("popen.pth", _torch_save(_popen)),
        case("exec_raw_pickle.ckpt", _raw_pickle(_exec_in_list, protocol=2)),
        case("exec_raw_pickle_p0.ckpt", _raw_pickle(_exec_in_list, protocol=0)),
        case("list.ckpt", _torch_save(lambda box: [1, 2, 3])),
        case("empty_dict.ckpt", _torch_save(lambda box: {})),
        case("random.ckpt", _bytes(bytes(range(256)) * 64)),
        case("zip_without_data.ckpt", _zip_without_data),
        case("truncated.ckpt", _tiny_sd1(True, truncate=True)),
        case("unrelated.ckpt", _tensors(_unrelated_tensors, ".ckpt")),
        case("diffusers_payload", _diffusers_with_payload),
        # The one good file: an SD 1.x checkpoint as Lightning saved it, numpy step counter.
        case("lightning_numpy_step.ckpt", _tiny_sd1(True), run=OK),
    ]


# fmt: on
CASES: tuple[Case, ...] = tuple(_workflow_cases() + _checkpoint_cases())


def write_all(folder: Path) -> dict[str, Path]:
    """Writes every case into ``folder``; returns each case's file to open."""
    box = Sandbox(folder)
    for sub in (box.cases / "folder.json", box.models, box.out):
        sub.mkdir(parents=True, exist_ok=True)
    return {case.name: case.write(box) for case in CASES}


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "malformed-corpus")
    for name, path in write_all(target).items():
        print(f"{name}: {path}")
