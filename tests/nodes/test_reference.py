"""The node reference is written from the specs: every node, its inputs' rules, its outputs."""

from __future__ import annotations

from nodes import build_registry
from nodes.reference import markdown_reference


def test_every_node_appears_once_with_its_type_and_description():
    registry = build_registry()
    text = markdown_reference(registry)
    for spec in registry:
        assert text.count(f'<a id="{spec.type_id.lower()}"></a>') == 1, spec.type_id
        assert f"Type `{spec.type_id}`" in text
        assert spec.description.replace("\n", " ")[:40] in text


def test_widget_rules_and_outputs_are_stated():
    text = markdown_reference(build_registry())
    section = text.split('<a id="emptylatentimage"></a>', 1)[1].split("\n### ", 1)[0]
    assert "| `width` | INT | default `512`; 16 to 16384; multiple of 8 |" in section
    assert "| `vae` | VAE | optional link |" in section
    assert "Outputs: `LATENT` (LATENT)." in section
    ksampler = text.split('<a id="ksampler"></a>', 1)[1].split("\n### ", 1)[0]
    assert "| `steps` | INT | default `20`; 1 to 10000; step 1 |" in ksampler
    assert "| `model` | MODEL | link |" in ksampler
