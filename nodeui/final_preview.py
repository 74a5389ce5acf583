"""Which shown pictures are a sampler's result decoded by the VAE, read from a run's workflow.

A sampler's step pictures are its latent projected to RGB at latent resolution, one colour per
cell; the picture a VAE Decode made of its output is what the run really produced. When such a
decode ran and its picture was shown (a Save Image or Preview Image fed straight by it), the
editor shows that picture as the sampler's last step. No Qt here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Node types that decode a LATENT into the picture it stands for with the full VAE.
DECODERS = frozenset({"VAEDecode", "VAEDecodeTiled"})
#: Node types that pass their input on unchanged.
PASSTHROUGH = frozenset({"Reroute"})


def _types(workflow: dict[str, Any]) -> dict[int, str]:
    return {int(n["id"]): str(n.get("type", "")) for n in workflow.get("nodes", ()) if "id" in n}


def _readers(
    workflow: dict[str, Any], types: dict[int, str], node_id: int, output: str | None
) -> Iterator[tuple[int, str]]:
    """The (node, input) pairs fed by ``node_id``'s ``output`` (any output when None),
    looking through reroutes."""
    for src, src_output, dst, dst_input in workflow.get("links", ()):
        if src != node_id or (output is not None and src_output != output):
            continue
        if types.get(dst) in PASSTHROUGH:
            yield from _readers(workflow, types, dst, None)
        else:
            yield dst, dst_input


def decoded_shown_by(workflow: dict[str, Any], sampler_id: int) -> list[tuple[int, int]]:
    """(decoder, image node) pairs: a VAE Decode whose ``samples`` come straight from the
    sampler, and a node fed straight by that decode's picture, in link order."""
    types = _types(workflow)
    pairs: list[tuple[int, int]] = []
    for decoder, input_name in _readers(workflow, types, sampler_id, None):
        if types.get(decoder) not in DECODERS or input_name != "samples":
            continue
        for shown, _ in _readers(workflow, types, decoder, None):
            pairs.append((decoder, shown))
    return pairs


def definition_data(workflow: dict[str, Any], instances: tuple[int, ...]) -> dict[str, Any] | None:
    """The workflow data of the definition that the instance path ``instances`` (top-level
    instance id, …) leads into, from the workflow's ``"subgraphs"``; None when it has none."""
    definitions = {str(d.get("id")): d for d in workflow.get("subgraphs", ()) or ()}
    graph: dict[str, Any] = workflow
    for instance in instances:
        types = _types(graph)
        found = definitions.get(types.get(instance, ""))
        if found is None:
            return None
        graph = found
    return graph
