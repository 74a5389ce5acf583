"""Corpus files that open fully because LatentLoom has the ComfyUI core node they use: each
file names the node type that used to leave it with a placeholder."""

from __future__ import annotations

import pytest

from tools.corpus_report import assess, load_manifest, make_registry

#: A corpus file and the ComfyUI core node types it needed.
FILES = {
    "cubiq_workflows/image_conditioning__conditioning_style.json": (
        "StyleModelLoader",
        "StyleModelApply",
    ),
    "cubiq_workflows/image_conditioning__timestepping_style_model.json": (
        "StyleModelLoader",
        "StyleModelApply",
    ),
}

FILES |= {
    # ModelSamplingDiscrete was there, its lcm mode refused.
    "comfyui_examples/lcm__lcm_basic_example.png": ("ModelSamplingDiscrete",),
    "replicate_cog_comfyui/lcm_basic_example.json": ("ModelSamplingDiscrete",),
}
FILES["comfyui_examples/model_merging__model_merging_cosxl.png"] = (
    "ModelMergeSDXL",
    "ModelSamplingContinuousEDM",
)
# A group node (IP2PSampler) around InstructPixToPixConditioning and Dual CFG Guider.
FILES["comfyui_examples/edit_models__sdxl_edit_model.png"] = ("InstructPixToPixConditioning",)
FILES["replicate_cog_comfyui/sdxl_lightning_unet_api.json"] = ("UNETLoader",)
FILES["comfyui_examples/hypernetworks__hypernetwork_example.png"] = ("HypernetworkLoader",)
FILES |= {
    "comfyui_examples/gligen__gligen_textbox_example.png": ("GLIGENLoader", "GLIGENTextBoxApply"),
    "cubiq_workflows/text2img__gligen_box.json": ("GLIGENLoader", "GLIGENTextBoxApply"),
}

ENTRIES = {entry.file: entry for entry in load_manifest()}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return make_registry(tmp_path_factory.mktemp("no_models"))


@pytest.mark.parametrize("file", list(FILES))
def test_the_file_opens_fully_with_the_core_nodes_it_uses(file, registry):
    found = assess(ENTRIES[file], registry)
    assert all(type_id in registry for type_id in FILES[file])
    assert found.opens_fully, found.lacks()
