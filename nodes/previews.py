"""Looking inside latents: Preview Latent, the sampler's step history, branching from a step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.graph import commands as c
from core.graph import types as t
from core.graph.model import Graph, NodeId
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.placement import place

#: Sampler node types whose HISTORY output can be branched from.
SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
#: The custom samplers, which take their noise levels from a SIGMAS input.
CUSTOM_SAMPLER_TYPES = ("SamplerCustom", "SamplerCustomAdvanced")


def _latent_from_history(ctx: Any, history: Any, step: int, which: str) -> dict[str, Any]:
    from core.engine import NodeError

    try:
        samples = history.at(step, "latent" if which == "x_t" else "denoised")
    except KeyError as exc:
        raise NodeError(str(exc.args[0]), field="step") from None
    return {"samples": samples, "downscale": history.downscale}


def _preview_latent(
    ctx: Any, samples: Mapping[str, Any], mode: str, model: Any = None, vae: Any = None
) -> tuple[()]:
    from core.diffusion import previews, vae_ops
    from core.engine import NodeError

    latent = samples["samples"]
    if mode == "vae":
        if vae is None:
            raise NodeError("the 'vae' mode needs a VAE: link one, or choose 'fast'", "vae")
        place(ctx, vae.vae)
        ctx.record("images", vae_ops.decode(vae, latent))
    else:
        projection = model.preview if model is not None else previews.SD1_LATENT_RGB
        ctx.record("images", projection.project(latent))
    ctx.record("images", previews.channel_grid(latent))
    return ()


SPECS = (
    NodeSpec(
        "LatentFromHistory",
        "Latent From History",
        "latent",
        _latent_from_history,
        inputs=(
            SocketInput("history", t.HISTORY),
            WidgetInput("step", t.INT, 1, min=1, max=10000, step=1),
            WidgetInput(
                "which",
                t.COMBO,
                "x_t",
                choices=("x_t", "denoised"),
                description="x_t: the latent after that step (continue sampling from it); "
                "denoised: the model's clean estimate at that step",
            ),
        ),
        outputs=(Output("LATENT", t.LATENT),),
        description="Takes one step of a finished sampler run from its history, without "
        "sampling again: the start of a branch with another prompt, CFG or sampler.",
    ),
    NodeSpec(
        "PreviewLatent",
        "Preview Latent",
        "latent",
        _preview_latent,
        inputs=(
            SocketInput("samples", t.LATENT),
            WidgetInput("mode", t.COMBO, "fast", choices=("fast", "vae")),
            SocketInput(
                "model",
                t.MODEL,
                optional=True,
                description="picks the fast projection's factors (SD 1.x's when unlinked)",
            ),
            SocketInput("vae", t.VAE, optional=True, description="for the 'vae' mode"),
        ),
        output_node=True,
        description="Shows a latent as a picture (the fast latent→RGB projection, or a full "
        "VAE decode) and each of its channels as a grey tile.",
    ),
)


def continue_from_step(graph: Graph, sampler_id: NodeId, step: int, schedule_steps: int) -> c.Macro:
    """The edit behind "continue from step k": a Latent From History (step k, x_t) fed by the
    sampler's HISTORY, and a KSampler (Advanced) that runs steps k…end of the same schedule
    from it, with the sampler's settings and conditioning links. Unchanged, the branch ends
    where the original run ended; change its prompt, CFG or sampler to explore. The custom
    samplers branch into their own type instead (``_continue_custom``).

    ``schedule_steps`` is the length of the sampler's whole schedule (the history's ``total``).
    """
    node = graph.node(sampler_id)
    if node.type_id not in SAMPLER_TYPES:
        raise ValueError(f"node {sampler_id} is a {node.type_id}, not a sampler")
    if node.type_id in CUSTOM_SAMPLER_TYPES:
        return _continue_custom(graph, sampler_id, step)
    params = node.params
    advanced = node.type_id == "KSamplerAdvanced"
    x, y = node.pos
    pick = graph.next_node_id()
    sampler = pick + 1
    branch = {
        "add_noise": False,
        "noise_seed": params["noise_seed"] if advanced else params["seed"],
        "steps": schedule_steps,
        "cfg": params["cfg"],
        "sampler_name": params["sampler_name"],
        "scheduler": params["scheduler"],
        "start_at_step": step,
        "end_at_step": params["end_at_step"] if advanced else 10000,
        "return_with_leftover_noise": bool(advanced and params["return_with_leftover_noise"]),
    }
    edits: list[c.Command] = [
        c.AddNode("LatentFromHistory", (x, y + 420), {"step": step}, node_id=pick),
        c.AddNode(
            "KSamplerAdvanced",
            (x + 300, y + 420),
            branch,
            node_id=sampler,
            title=f"from step {step}",
        ),
        c.Connect(sampler_id, "HISTORY", pick, "history"),
        c.Connect(pick, "LATENT", sampler, "latent_image"),
    ]
    for name in ("model", "positive", "negative"):
        link = graph.link_to(sampler_id, name)
        if link is not None:
            edits.append(c.Connect(link.src, link.src_output, sampler, name))
    return c.Macro(f"Continue From Step {step}", edits)


def _continue_custom(graph: Graph, sampler_id: NodeId, step: int) -> c.Macro:
    """ "Continue from step k" for Sampler Custom (Advanced): the same sampler type without
    initial noise, fed the step-k latent and the levels from step k on (a Split Sigmas of the
    sampler's own sigmas), every other input linked as the sampler's. Unchanged, a
    deterministic sampler ends where the original run ended; stochastic ones draw fresh noise
    for the remaining steps, as after any Split Sigmas. The new sampler is the last node
    added."""
    node = graph.node(sampler_id)
    x, y = node.pos
    pick = graph.next_node_id()
    split = pick + 1
    edits: list[c.Command] = [
        c.AddNode("LatentFromHistory", (x, y + 420), {"step": step}, node_id=pick),
        c.AddNode("SplitSigmas", (x, y + 560), {"step": step}, node_id=split),
    ]
    if node.type_id == "SamplerCustom":
        sampler = split + 1
        params = {"add_noise": False, "noise_seed": node.params["noise_seed"]}
        params["cfg"] = node.params["cfg"]
        linked = ("model", "positive", "negative", "sampler")
    else:
        silence, sampler = split + 1, split + 2
        params = {}
        linked = ("guider", "sampler")
        edits.append(c.AddNode("DisableNoise", (x, y + 680), {}, node_id=silence))
    title = f"from step {step}"
    edits.append(c.AddNode(node.type_id, (x + 300, y + 420), params, node_id=sampler, title=title))
    if node.type_id != "SamplerCustom":
        edits.append(c.Connect(silence, "NOISE", sampler, "noise"))
    edits += [
        c.Connect(sampler_id, "HISTORY", pick, "history"),
        c.Connect(pick, "LATENT", sampler, "latent_image"),
        c.Connect(split, "low_sigmas", sampler, "sigmas"),
    ]
    sigmas = graph.link_to(sampler_id, "sigmas")
    if sigmas is not None:
        edits.append(c.Connect(sigmas.src, sigmas.src_output, split, "sigmas"))
    for name in linked:
        link = graph.link_to(sampler_id, name)
        if link is not None:
            edits.append(c.Connect(link.src, link.src_output, sampler, name))
    return c.Macro(f"Continue From Step {step}", edits)
