"""The Compile Model node's wiring, with torch.compile replaced by a recording fake (nothing is
compiled for real here): every UNet call of a run goes through the compiled callable once its
shape is ready, the background mode runs eagerly until then, a failing compiler leaves the UNet
eager, and inductor's caches go under the user's cache folder."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from core.diffusion import compiled
from core.diffusion.compiled import CompiledUnet, CompileSettings
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


class FakeCompiler:
    """Stands in for torch.compile: the 'compiled' callable is the eager UNet, counted."""

    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.built, self.calls, self.fail, self.gate = 0, 0, fail, gate

    def __call__(self, unet, settings):
        self.built += 1

        def run(*args, **kwargs):
            if self.gate is not None:
                self.gate.wait(10)
            if self.fail:
                raise RuntimeError("C++ compiler not found\nmore detail")
            self.calls += 1
            return unet(*args, **kwargs)

        return run


@pytest.fixture
def fake(monkeypatch):
    compiler = FakeCompiler()
    monkeypatch.setattr(CompiledUnet, "compiler", staticmethod(compiler))
    return compiler


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "checkpoints"
    write_single_file(make_tiny_pipeline(ModelFamily.SD1), folder / "tiny.safetensors")
    return build_registry(ModelPaths.of(folder.parent))


def _graph(registry, compile_params: dict | None) -> tuple[Graph, int, int]:
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    pos = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    neg = g.add_node("CLIPTextEncode", params={"text": ""}).id
    empty = g.add_node("EmptyLatentImage", params={"width": 16, "height": 16}).id
    params = {"seed": 3, "steps": 3, "cfg": 5.0, "sampler_name": "euler"}
    sampler = g.add_node("KSampler", params=params).id
    model = (load, "MODEL")
    if compile_params is not None:
        node = g.add_node("CompileModel", params=compile_params).id
        g.connect(load, "MODEL", node, "model")
        model = (node, "MODEL")
    for enc in (pos, neg):
        g.connect(load, "CLIP", enc, "clip")
    g.connect(*model, sampler, "model")
    g.connect(pos, "CONDITIONING", sampler, "positive")
    g.connect(neg, "CONDITIONING", sampler, "negative")
    g.connect(empty, "LATENT", sampler, "latent_image")
    return g, load, sampler


def _latent(report, node):
    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    return report.outputs[node][0]["samples"]


def test_compile_model_node_runs_every_step_through_the_compiled_unet(registry, fake):
    plain, _, plain_sampler = _graph(registry, None)
    graph, load, sampler = _graph(registry, {"background": False})
    executor = Executor(registry)

    expected = _latent(executor.run(plain, [plain_sampler], device="cpu"), plain_sampler)
    report = executor.run(graph, [load, sampler], device="cpu")

    torch.testing.assert_close(_latent(report, sampler), expected)
    assert fake.built == 1
    assert fake.calls == 3  # one CFG-batched UNet call a step, Euler: 3 steps
    assert not isinstance(report.outputs[load][0].unet, CompiledUnet)  # the base stays shared


def _unet_and_inputs():
    calls = []

    def unet(sample, timestep, **kwargs):
        calls.append(sample.shape)
        return sample * 2

    return unet, calls


def test_background_mode_runs_eagerly_until_the_shape_is_compiled(fake):
    fake.gate = threading.Event()
    unet, eager_calls = _unet_and_inputs()
    wrapped = CompiledUnet(unet, CompileSettings(background=True))
    x = torch.ones(2, 4, 8, 8)

    first = wrapped(x, torch.tensor(10.0), encoder_hidden_states=torch.zeros(2, 77, 8))
    second = wrapped(x, torch.tensor(9.0), encoder_hidden_states=torch.zeros(2, 77, 8))
    assert wrapped.compiled_shapes == 0  # still compiling: both calls ran eagerly
    fake.gate.set()
    wrapped.wait(10)
    eager_before = len(eager_calls)
    third = wrapped(x, torch.tensor(8.0), encoder_hidden_states=torch.zeros(2, 77, 8))

    assert wrapped.compiled_shapes == 1
    assert fake.built == 1
    # The background thread's warm-up call and the third call went through the compiled one.
    assert fake.calls == 2
    assert len(eager_calls) == eager_before + 1  # the fake's compiled callable is the UNet
    for output in (first, second, third):
        torch.testing.assert_close(output, x * 2)


def test_a_new_shape_is_compiled_again(fake):
    unet, _ = _unet_and_inputs()
    wrapped = CompiledUnet(unet, CompileSettings(background=False))
    context = torch.zeros(2, 77, 8)
    wrapped(torch.ones(2, 4, 8, 8), torch.tensor(1.0), encoder_hidden_states=context)
    wrapped(torch.ones(2, 4, 8, 8), torch.tensor(0.5), encoder_hidden_states=context)
    assert wrapped.compiled_shapes == 1
    wrapped(torch.ones(1, 4, 8, 8), torch.tensor(0.5), encoder_hidden_states=context[:1])
    assert wrapped.compiled_shapes == 2


def test_a_failing_compiler_leaves_the_unet_eager_with_the_reason(monkeypatch):
    monkeypatch.setattr(CompiledUnet, "compiler", staticmethod(FakeCompiler(fail=True)))
    unet, eager_calls = _unet_and_inputs()
    wrapped = CompiledUnet(unet, CompileSettings(background=False))
    x = torch.ones(1, 4, 8, 8)

    out = wrapped(x, torch.tensor(1.0))
    again = wrapped(x, torch.tensor(1.0))

    torch.testing.assert_close(out, x * 2)
    torch.testing.assert_close(again, x * 2)
    assert wrapped.failure == "RuntimeError: C++ compiler not found"
    assert wrapped.compiled_shapes == 0
    assert len(eager_calls) == 2


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend 'tvm' is not supported"):
        CompileSettings(backend="tvm")


@pytest.mark.parametrize("before", [None, "torch's default", "mine"])
def test_inductor_caches_go_under_the_user_cache_folder(monkeypatch, tmp_path, before):
    import torch._inductor.config as inductor
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv(compiled.CACHE_ENVIRONMENT, str(tmp_path / "cache"))
    # Set in any case, so the teardown also undoes what configure_inductor sets.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unused")
    if before is None:
        monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    else:
        chosen = default_cache_dir() if before == "torch's default" else str(tmp_path / "mine")
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", chosen)

    # inductor's config module is no plain module (monkeypatch cannot undo on it): restore
    # its settings by hand.
    saved = inductor.freezing, inductor.fx_graph_cache
    inductor.freezing = inductor.fx_graph_cache = False
    try:
        compiled.configure_inductor()
        settings = inductor.freezing, inductor.fx_graph_cache
    finally:
        inductor.freezing, inductor.fx_graph_cache = saved

    expected = tmp_path / ("mine" if before == "mine" else "cache/inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(expected)
    # The graph cache is on; freezing is chosen per compilation, never globally.
    assert settings == (False, True)


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("freeze", [False, True])
def test_each_shape_compiles_with_its_models_freezing_setting(monkeypatch, freeze, background):
    import torch._inductor.config as inductor

    seen = []

    def compiler(unet, settings):
        # Dynamo reads inductor's global setting while it traces a shape's first call.
        return lambda *args, **kwargs: seen.append(inductor.freezing) or unet(*args, **kwargs)

    monkeypatch.setattr(CompiledUnet, "compiler", staticmethod(compiler))
    before = inductor.freezing
    unet, _ = _unet_and_inputs()
    wrapped = CompiledUnet(unet, CompileSettings(background=background, freeze=freeze))
    wrapped(torch.ones(2, 4, 8, 8), torch.tensor(1.0))
    wrapped.wait()
    assert seen == [freeze]
    assert inductor.freezing == before  # only for the compilation


@pytest.mark.parametrize("freeze", [False, True])
def test_the_node_passes_freeze_weights_to_the_compiled_unet(registry, fake, freeze):
    graph, _, _ = _graph(registry, {"background": False, "freeze_weights": freeze})
    node = next(n.id for n in graph if n.type_id == "CompileModel")
    report = Executor(registry).run(graph, [node], device="cpu")
    wrapped = report.outputs[node][0].unet
    assert isinstance(wrapped, CompiledUnet) and wrapped.settings.freeze is freeze
