"""ModelMergeSD1, ModelMergeSD2 and ModelMergeSDXL: a ratio per UNet block, by ComfyUI's
names (LDM name prefixes), on tiny random SDXL models loaded from single files."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from nodes.merging import block_names
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for name, seed in (("a", 0), ("b", 1)):
        pipeline = make_tiny_pipeline(ModelFamily.SDXL, seed=seed)
        write_single_file(pipeline, root / "checkpoints" / f"xl-{name}.safetensors")
    return build_registry(ModelPaths.of(root))


def test_the_block_merges_have_comfyuis_widgets_in_order(registry):
    sdxl = [i.name for i in registry.get("ModelMergeSDXL").inputs]
    assert sdxl[:4] == ["model1", "model2", "time_embed.", "label_emb."]
    assert sdxl[4:13] == [f"input_blocks.{i}." for i in range(9)]
    assert sdxl[13:16] == ["middle_block.0.", "middle_block.1.", "middle_block.2."]
    assert sdxl[-1] == "out." and len(sdxl) == 2 + 24
    assert len(registry.get("ModelMergeSD1").inputs) == 2 + len(block_names(12, 12)) == 32


def test_each_block_takes_its_own_ratio(registry):
    g = Graph(registry)
    a = g.add_node("LoadCheckpoint", params={"ckpt_name": "xl-a.safetensors"}).id
    b = g.add_node("LoadCheckpoint", params={"ckpt_name": "xl-b.safetensors"}).id
    ratios = {"time_embed.": 0.9, "label_emb.": 0.7, "input_blocks.1.": 0.25}
    ratios |= {"middle_block.1.": 0.4, "output_blocks.0.": 0.5, "out.": 0.0}
    merge = g.add_node("ModelMergeSDXL", params=ratios).id
    g.connect(a, "MODEL", merge, "model1")
    g.connect(b, "MODEL", merge, "model2")
    out = Executor(registry).run(g, outputs=[a, b, merge], device="cpu").outputs
    first, second, merged = (out[n][0].unet.state_dict() for n in (a, b, merge))

    def mixed(name: str, ratio: float) -> None:
        expected = ratio * first[name].float() + (1 - ratio) * second[name].float()
        torch.testing.assert_close(merged[name].float(), expected, atol=1e-3, rtol=1e-3)

    mixed("time_embedding.linear_1.weight", 0.9)  # time_embed.0
    mixed("add_embedding.linear_2.weight", 0.7)  # label_emb.0.2
    mixed("down_blocks.0.resnets.0.conv1.weight", 0.25)  # input_blocks.1.0
    mixed("mid_block.attentions.0.proj_in.weight", 0.4)  # middle_block.1
    mixed("up_blocks.0.resnets.0.conv1.weight", 0.5)  # output_blocks.0.0
    mixed("conv_out.weight", 0.0)  # out.2
    mixed("conv_in.weight", 1.0)  # input_blocks.0 keeps its default of 1
    assert torch.equal(
        merged["up_blocks.1.resnets.0.conv1.weight"], first["up_blocks.1.resnets.0.conv1.weight"]
    )
