"""Model folder layouts and name resolution."""

from __future__ import annotations

import pytest

from core.diffusion.errors import ModelNotFoundError
from core.diffusion.model_paths import ModelKind, ModelPaths


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def roots(tmp_path):
    comfy = tmp_path / "ComfyUI"
    touch(comfy / "models/checkpoints/sd15.safetensors")
    touch(comfy / "models/checkpoints/xl/juggernaut.safetensors")
    touch(comfy / "models/checkpoints/pipe/model_index.json")
    touch(comfy / "models/checkpoints/pipe/unet/diffusion_pytorch_model.safetensors")
    touch(comfy / "models/loras/detail.safetensors")
    touch(comfy / "models/checkpoints/readme.txt")
    a1111 = tmp_path / "webui"
    touch(a1111 / "models/Stable-diffusion/v2-1_768.ckpt")
    touch(a1111 / "models/VAE/vae-ft-mse.safetensors")
    touch(a1111 / "models/Lora/style.safetensors")
    touch(a1111 / "embeddings/bad-hands.pt")
    plain = tmp_path / "models"
    touch(plain / "checkpoints/sd15.safetensors")
    touch(plain / "vae/sdxl_vae.safetensors")
    return ModelPaths.of(comfy, a1111, plain), comfy, a1111, plain


def test_lists_every_layout(roots):
    paths, *_ = roots
    assert paths.list(ModelKind.CHECKPOINTS) == [
        "pipe",
        "sd15.safetensors",
        "v2-1_768.ckpt",
        "xl/juggernaut.safetensors",
    ]
    assert paths.list(ModelKind.VAE) == ["sdxl_vae.safetensors", "vae-ft-mse.safetensors"]
    assert paths.list(ModelKind.LORAS) == ["detail.safetensors", "style.safetensors"]
    assert paths.list(ModelKind.EMBEDDINGS) == ["bad-hands.pt"]


def test_resolve_prefers_earlier_roots(roots):
    paths, comfy, a1111, _ = roots
    assert paths.resolve(ModelKind.CHECKPOINTS, "sd15.safetensors") == (
        comfy / "models/checkpoints/sd15.safetensors"
    )
    assert paths.resolve(ModelKind.CHECKPOINTS, "pipe") == comfy / "models/checkpoints/pipe"
    assert paths.resolve(ModelKind.CHECKPOINTS, "v2-1_768.ckpt").parent.name == "Stable-diffusion"
    assert paths.resolve(ModelKind.LORAS, "style.safetensors").is_relative_to(a1111)


def test_missing_name_lists_only_the_folders_that_exist(roots):
    paths, comfy, a1111, plain = roots
    with pytest.raises(ModelNotFoundError) as info:
        paths.resolve(ModelKind.VAE, "missing.safetensors")
    message = str(info.value)
    assert "missing.safetensors" in message
    assert str(a1111 / "models/VAE") in message and str(plain / "vae") in message
    assert str(comfy / "models/vae") not in message  # that folder does not exist
    assert "models/models" not in message and message.count(str(plain / "vae")) == 1


def test_missing_name_without_any_folder_names_the_roots(tmp_path):
    paths = ModelPaths.of(tmp_path / "empty", tmp_path / "empty")
    with pytest.raises(ModelNotFoundError) as info:
        paths.resolve(ModelKind.LORAS, "style.safetensors")
    message = str(info.value)
    assert message.count(str(tmp_path / "empty")) == 1 and "loras" in message


def test_a_plain_folder_is_not_a_model(tmp_path):
    (tmp_path / "checkpoints" / "half.safetensors").mkdir(parents=True)
    with pytest.raises(ModelNotFoundError, match="is a folder, not a checkpoints model"):
        ModelPaths.of(tmp_path).resolve(ModelKind.CHECKPOINTS, "half.safetensors")


def test_escaping_names_are_refused(roots):
    paths, *_ = roots
    with pytest.raises(ModelNotFoundError, match="not a model name"):
        paths.resolve(ModelKind.VAE, "../secrets.safetensors")


def test_upscale_models_are_found_in_comfyui_and_a1111_folders(tmp_path):
    comfy, a1111 = tmp_path / "ComfyUI", tmp_path / "webui"
    touch(comfy / "models/upscale_models/4x-UltraSharp.pth")
    touch(a1111 / "models/ESRGAN/4x_foolhardy_Remacri.pth")
    touch(a1111 / "models/RealESRGAN/RealESRGAN_x4plus.pth")
    paths = ModelPaths.of(comfy, a1111)
    assert paths.list(ModelKind.UPSCALE_MODELS) == [
        "4x-UltraSharp.pth",
        "4x_foolhardy_Remacri.pth",
        "RealESRGAN_x4plus.pth",
    ]
    found = paths.resolve(ModelKind.UPSCALE_MODELS, "RealESRGAN_x4plus.pth")
    assert found == a1111 / "models/RealESRGAN/RealESRGAN_x4plus.pth"


def test_controlnets_and_t2i_adapters_are_found_in_comfyui_and_a1111_folders(tmp_path):
    comfy, a1111 = tmp_path / "ComfyUI", tmp_path / "webui"
    touch(comfy / "models/controlnet/control_v11p_sd15_canny.pth")
    touch(comfy / "models/t2i_adapter/t2iadapter_depth_sd15v2.pth")
    touch(a1111 / "models/ControlNet/control_sd15_openpose.safetensors")
    paths = ModelPaths.of(comfy, a1111)
    assert paths.list(ModelKind.CONTROLNET) == [
        "control_sd15_openpose.safetensors",
        "control_v11p_sd15_canny.pth",
        "t2iadapter_depth_sd15v2.pth",
    ]
    found = paths.resolve(ModelKind.CONTROLNET, "t2iadapter_depth_sd15v2.pth")
    assert found == comfy / "models/t2i_adapter/t2iadapter_depth_sd15v2.pth"


def test_image_prompt_models_are_found_in_their_comfyui_folders(tmp_path):
    comfy, bare = tmp_path / "ComfyUI", tmp_path / "models"
    touch(comfy / "models/clip_vision/clip_vision_g.safetensors")
    touch(bare / "clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")
    touch(comfy / "models/ipadapter/ip-adapter_sd15.safetensors")
    touch(comfy / "models/style_models/coadapter-style-sd15v1.pth")
    paths = ModelPaths.of(bare, comfy)
    assert paths.list(ModelKind.CLIP_VISION) == [
        "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors",
        "clip_vision_g.safetensors",
    ]
    assert paths.list(ModelKind.IPADAPTER) == ["ip-adapter_sd15.safetensors"]
    assert paths.list(ModelKind.STYLE_MODELS) == ["coadapter-style-sd15v1.pth"]
    found = paths.resolve(ModelKind.IPADAPTER, "ip-adapter_sd15.safetensors")
    assert found == comfy / "models/ipadapter/ip-adapter_sd15.safetensors"
