"""Node packs: found through the ``latentloom.nodes`` entry points, checked, and isolated: a pack
that fails is reported by name and skipped while the built-in nodes and other packs load."""

from __future__ import annotations

import sys

import pytest

from core.graph.packs import PackStatus
from nodes import build_registry
from nodes.packs import disabled_from_environment
from tests.helpers.node_packs import (
    EXAMPLE_NAME,
    install_example_pack,
    install_on_path,
    pack_site,
)

__all__ = ["pack_site"]  # the fixture, imported for the tests below

BUILTIN_COUNT = len(build_registry())

SPEC_IMPORTS = (
    "from core.graph import types as t\n"
    "from core.graph.packs import NodePack\n"
    "from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput\n"
)


def _node(type_id: str, inputs: str = "", outputs: str = "Output('STRING', t.STRING),") -> str:
    """Source text of a NodeSpec expression for a pack module."""
    return (
        f"NodeSpec(type_id={type_id!r}, title={type_id!r}, category='test pack', "
        f"function=lambda ctx, **kw: 'x', inputs=({inputs}), outputs=({outputs}))"
    )


def _listed(*nodes: str) -> str:
    """A pack module's body binding ``nodes`` to a list of those NodeSpec expressions."""
    return f"nodes = [{', '.join(nodes)}]\n"


def _pack(site, name: str, body: str, attr: str = "nodes") -> None:
    module = name.replace("-", "_")
    install_on_path(
        site, name, "1.0", {"main": f"{module}:{attr}"}, {f"{module}.py": SPEC_IMPORTS + body}
    )


def _report(registry, name):
    report = registry.pack_report(name)
    assert report is not None, [r.name for r in registry.packs]
    return report


def test_the_example_pack_is_found_through_its_entry_point(pack_site):
    install_example_pack(pack_site)
    registry = build_registry()
    report = _report(registry, EXAMPLE_NAME)
    assert report.status is PackStatus.OK
    assert report.version == "0.2.0"
    assert report.entry_points == ("example = latentloom_example_pack:node_pack",)
    assert set(report.node_types) == {
        "ExamplePack.Posterize",
        "ExamplePack.MeanColour",
        "ExamplePack.Fill",
    }
    assert report.socket_types == ("EXAMPLE_COLOUR",)
    assert len(registry) == BUILTIN_COUNT + 3
    assert registry.get("ExamplePack.Fill").pack == EXAMPLE_NAME
    assert registry.get("KSampler").pack is None


def test_a_pack_node_runs_in_a_graph_with_built_in_nodes(pack_site, tmp_path):
    from core.engine import Executor
    from core.graph.model import Graph

    install_example_pack(pack_site)
    registry = build_registry()
    graph = Graph(registry)
    source = graph.add_node(
        "GradientImage",
        params={"width": 8, "height": 8, "start_color": "#000000", "end_color": "#ffffff"},
    ).id
    poster = graph.add_node("ExamplePack.Posterize", params={"levels": 2}).id
    mean = graph.add_node("ExamplePack.MeanColour").id
    fill = graph.add_node("ExamplePack.Fill").id
    graph.connect(source, "IMAGE", poster, "image")
    graph.connect(poster, "IMAGE", mean, "image")
    graph.connect(poster, "IMAGE", fill, "image")
    graph.connect(mean, "COLOUR", fill, "colour")
    report = Executor(registry).run(graph, outputs=[poster, mean, fill], output_dir=tmp_path)
    assert report.status == "ok", report.to_json()
    (posterized,) = report.outputs[poster]
    assert set(posterized.unique().tolist()) == {0.0, 1.0}  # two levels: black and white
    (colour,) = report.outputs[mean]
    assert colour == pytest.approx((0.5, 0.5, 0.5), abs=0.07)  # a left-right gradient
    (filled,) = report.outputs[fill]
    assert filled.shape == posterized.shape
    assert filled[0, 3, 5].tolist() == pytest.approx(list(colour))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("import not_a_module_anywhere\nnodes = []\n", "ModuleNotFoundError"),
        ("def nodes():\n    raise RuntimeError('no GPU library here')\n", "no GPU library here"),
        ("nodes = 42\n", "gave int"),
        ("nodes = ['KSampler']\n", "item 1 is a str, not a NodeSpec"),
        (f"nodes = [{_node('KSampler')}]\n", "'KSampler' is already defined by a built-in"),
        (f"nodes = [{_node('Pack.A')}, {_node('Pack.A')}]\n", "already defined by this pack"),
        (
            _listed(_node("Pack.B", outputs='Output("X", "PALETTE"),')),
            "output 'X' has socket type 'PALETTE', which is neither built in nor declared",
        ),
        (
            f"nodes = NodePack([{_node('Pack.C')}], socket_types=['palette'])\n",
            "declares the socket type 'palette'",
        ),
        (
            _listed(_node("Pack.D", inputs='WidgetInput("n", t.INT, 99, max=10),')),
            "widget 'n' has a bad default: 99 is above the maximum 10",
        ),
        (
            _listed(_node("Pack.E", inputs='WidgetInput("n", "COLOR", 1),')),
            "widget 'n' has type 'COLOR'",
        ),
        ("import sys\nsys.exit(3)\n", "SystemExit"),
    ],
)
def test_a_broken_pack_is_reported_and_skipped_while_the_rest_loads(pack_site, body, words):
    install_example_pack(pack_site)
    _pack(pack_site, "broken-pack", body)
    registry = build_registry()
    broken = _report(registry, "broken-pack")
    assert broken.status is PackStatus.FAILED
    assert words in broken.error
    assert "broken-pack 1.0: failed, skipped" in broken.summary()
    assert "\n" not in broken.error
    assert _report(registry, EXAMPLE_NAME).status is PackStatus.OK
    assert len(registry) == BUILTIN_COUNT + 3
    assert not any(spec.pack == "broken-pack" for spec in registry)


def test_a_pack_may_use_socket_types_it_declares(pack_site):
    outputs = 'Output("X", "PALETTE"),'
    _pack(
        pack_site,
        "palette-pack",
        f"nodes = NodePack([{_node('P.A', outputs=outputs)}], ['PALETTE'])\n",
    )
    registry = build_registry()
    assert _report(registry, "palette-pack").socket_types == ("PALETTE",)
    assert registry.get("P.A").outputs[0].type == "PALETTE"


def test_the_second_pack_defining_a_type_fails_naming_the_first(pack_site):
    _pack(pack_site, "aaa-pack", f"nodes = [{_node('Shared.Node')}]\n")
    _pack(pack_site, "bbb-pack", f"nodes = [{_node('Shared.Node')}, {_node('Bbb.Own')}]\n")
    registry = build_registry()
    assert _report(registry, "aaa-pack").status is PackStatus.OK
    second = _report(registry, "bbb-pack")
    assert second.status is PackStatus.FAILED
    assert "already defined by node pack 'aaa-pack'" in second.error
    assert "Bbb.Own" not in registry and registry.get("Shared.Node").pack == "aaa-pack"


def test_a_disabled_pack_is_listed_but_its_code_never_runs(pack_site):
    _pack(pack_site, "noisy-pack", "raise RuntimeError('imported')\n")
    install_example_pack(pack_site)
    registry = build_registry(disabled_packs=["Noisy_Pack", EXAMPLE_NAME])
    assert _report(registry, "noisy-pack").status is PackStatus.DISABLED
    assert _report(registry, EXAMPLE_NAME).status is PackStatus.DISABLED
    assert _report(registry, EXAMPLE_NAME).summary() == f"{EXAMPLE_NAME} 0.2.0: disabled"
    assert "noisy_pack" not in sys.modules and "latentloom_example_pack" not in sys.modules
    assert len(registry) == BUILTIN_COUNT


def test_disabled_packs_from_the_environment(monkeypatch):
    monkeypatch.setenv("LATENTLOOM_DISABLED_PACKS", " one-pack, two_pack ,, ")
    assert disabled_from_environment() == ("one-pack", "two_pack")
    monkeypatch.delenv("LATENTLOOM_DISABLED_PACKS")
    assert disabled_from_environment() == ()


def test_no_packs_installed_means_the_built_in_catalogue_alone():
    registry = build_registry(entry_points=[])
    assert registry.packs == () and len(registry) == BUILTIN_COUNT


def test_the_example_pack_installed_by_pip_loads(pack_site, tmp_path):
    """The fixture's pyproject.toml really builds: pip installs it (no network, no deps) and the
    registry finds its entry point where pip put it."""
    import shutil
    import subprocess

    from tests.helpers.node_packs import EXAMPLE_PACK

    source = tmp_path / "source"  # the build writes egg-info beside the sources: not the repo's
    shutil.copytree(EXAMPLE_PACK, source)
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(pack_site), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = _report(build_registry(), EXAMPLE_NAME)
    assert report.status is PackStatus.OK and report.version == "0.2.0"
    assert "ExamplePack.Posterize" in report.node_types
