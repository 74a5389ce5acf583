"""The pieces every shipped text-to-image workflow is built from, for the scripts in ``tools/``
that write ``resources/workflows/*.json``.

Nodes are added, and links made, in the order the scripts always used, so that the node and
link ids in the written files stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.graph.model import Graph, Group, Node

Pos = tuple[float, float]
#: The colour of the group around the two prompts.
PROMPTS_COLOUR = "#6b5a2e"


@dataclass(frozen=True)
class SamplerSettings:
    """What a workflow samples with: a ``size`` square picture, KSampler's steps, guidance
    scale, sampler and schedule (seed 0)."""

    size: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str


#: What the demo model is sampled with in the default workflow and the examples built on it:
#: a 64×64 picture (its VAE has 4 pixels per latent cell), 20 Euler steps on Karras's schedule,
#: guidance 5.
DEMO_SETTINGS = SamplerSettings(
    size=64, steps=20, cfg=5.0, sampler_name="euler", scheduler="karras"
)
#: The demo workflows' Guidance Interval (σ_low, σ_high): no guidance below σ = 1.1.
DEMO_GUIDANCE_INTERVAL = (1.1, 1000.0)


@dataclass(frozen=True)
class Sampling:
    """The nodes from an empty latent to the saved picture."""

    empty: Node
    sampler: Node
    decode: Node
    save: Node


def add_prompts(
    graph: Graph, load: Node, text: str, positive: Pos, negative: Pos
) -> tuple[Node, Node]:
    """A titled positive prompt with ``text`` and an empty negative one, both fed the
    checkpoint's CLIP."""
    encoders = (
        graph.add_node(
            "CLIPTextEncode", params={"text": text}, pos=positive, title="Positive prompt"
        ),
        graph.add_node(
            "CLIPTextEncode", params={"text": ""}, pos=negative, title="Negative prompt"
        ),
    )
    for encoder in encoders:
        graph.connect(load.id, "CLIP", encoder.id, "clip")
    return encoders


def add_guidance_interval(graph: Graph, pos: Pos) -> Node:
    """A Guidance Interval node with ``DEMO_GUIDANCE_INTERVAL``; not linked yet."""
    low, high = DEMO_GUIDANCE_INTERVAL
    return graph.add_node(
        "GuidanceInterval", params={"sigma_low": low, "sigma_high": high}, pos=pos
    )


def add_sampling(
    graph: Graph, settings: SamplerSettings, at: tuple[Pos, Pos, Pos, Pos]
) -> Sampling:
    """Empty Latent Image, KSampler, VAE Decode and Save Image, at the four positions of ``at``
    in that order; not linked yet (see ``link_sampling``)."""
    empty_at, sampler_at, decode_at, save_at = at
    return Sampling(
        empty=graph.add_node(
            "EmptyLatentImage",
            params={"width": settings.size, "height": settings.size},
            pos=empty_at,
        ),
        sampler=graph.add_node(
            "KSampler",
            params={
                "seed": 0,
                "steps": settings.steps,
                "cfg": settings.cfg,
                "sampler_name": settings.sampler_name,
                "scheduler": settings.scheduler,
            },
            pos=sampler_at,
        ),
        decode=graph.add_node("VAEDecode", pos=decode_at),
        save=graph.add_node("SaveImage", params={"filename_prefix": "LatentLoom"}, pos=save_at),
    )


def link_sampling(graph: Graph, sampling: Sampling) -> None:
    """Empty latent → KSampler → VAE Decode → Save Image."""
    graph.connect(sampling.empty.id, "LATENT", sampling.sampler.id, "latent_image")
    graph.connect(sampling.sampler.id, "LATENT", sampling.decode.id, "samples")
    graph.connect(sampling.decode.id, "IMAGE", sampling.save.id, "images")


def group_prompts(
    graph: Graph, prompts: tuple[Node, Node], rect: tuple[float, float, float, float]
) -> None:
    """Group 1, "Prompts", around the two prompts."""
    members = frozenset(node.id for node in prompts)
    graph.add_group(Group(1, "Prompts", members, PROMPTS_COLOUR, rect))
