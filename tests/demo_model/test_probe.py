"""The conditioning probe on the shipped model: a prompt identical to the base moves nothing, a
different colour moves both the text encoder's output and the UNet's estimate."""

from __future__ import annotations

import pytest

from tools.demo_model import components, probe


def test_probe_measures_zero_for_the_same_prompt_and_more_for_another_colour(monkeypatch) -> None:
    monkeypatch.setattr(
        probe,
        "CONTRASTS",
        {
            "unchanged": ("left", "left", probe.BASE_PROMPT),
            "colour": probe.CONTRASTS["colour"],
        },
    )
    monkeypatch.setattr(probe, "KEEP_FROM", (51,))
    report = probe.main(["--model", str(components.MODEL_DIR)])
    same, colour = report["attributes"]["unchanged"], report["attributes"]["colour"]
    assert same["embedding_distance"] == 0
    assert same["context_distance"] == 0
    assert set(same["x0_distance"].values()) == {0}
    assert set(same["x0_distance"]) == {str(t) for t in probe.TIMESTEPS}
    assert colour["context_distance"] > 1
    assert min(colour["x0_distance"].values()) > 1
    # the autoencoder's own distance between the two scenes: none for the same scene
    assert same["latent_distance"] == 0 and same["x0_share"] is None
    assert colour["latent_distance"] > 1
    assert colour["x0_share"] == pytest.approx(
        colour["x0_distance"][str(probe.TIMESTEPS[-1])] / colour["latent_distance"], abs=0.01
    )
    # the shipped model has learnt colour words, so they sit further apart than untrained ones
    assert colour["embedding_distance"] > report["unused_words_embedding_distance"]


def test_scene_latents_name_a_prompt_that_is_no_canonical_caption() -> None:
    with pytest.raises(ValueError, match="a red blob somewhere"):
        probe.scene_latents(components.MODEL_DIR, [probe.BASE_PROMPT, "a red blob somewhere"])


def test_probe_names_the_folder_it_cannot_read(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        probe.probe(tmp_path)


def test_estimate_follows_the_noised_image_more_the_less_noise_there_is() -> None:
    """With an empty prompt only the noised image can place the object, so the one-step
    estimate moves toward it, little at t = 999 where almost nothing of the image is left and
    pixels at t = 751 and 651, where the object is plain to see. This holds whether or not the
    model has learned the position words (a model of 2026-11-23 followed the prompt's side
    instead at every t down to 851); a sign or axis mix-up in the measurement would break it."""
    shifts = probe.image_versus_prompt(components.MODEL_DIR, prompted=False)
    assert set(shifts) == {str(t) for t in probe.SHIFT_TIMESTEPS}
    assert shifts["651"] > shifts["751"] > 4
    assert shifts["751"] > 4 * abs(shifts["999"])


def test_the_model_keeps_the_shapes_of_scenes_noised_to_low_t() -> None:
    """Noised to t = 51 the scene's object is plain to see and the shipped model finishes nearly
    every one as drawn (the models of 2026-12-03: 91 %; of 2026-12-05: 14 of these 16; of
    2026-12-06, with its shape codes written into the encoded latents: 14 of 16, the decoder's
    own ceiling); a start that judged the wrong scene would not. Models without shape codes
    also kept fewer from t = 951, where little of the scene is left, and this test asked for
    that; a model with shape codes draws the shape from the word and keeps 16 of 16 from there,
    so that order no longer says anything about the probe (its noise levels are checked by the
    estimate test above)."""
    kept = probe.shape_kept_from_noise(components.MODEL_DIR, starts=(51, 951), per_triple=1)
    assert set(kept) == {"51", "951"}
    assert set(kept["51"]) == {"all", "circle", "square", "triangle"}
    assert kept["51"]["all"] >= 0.75
    with pytest.raises(ValueError, match="below the 20-step schedule"):
        probe.shape_kept_from_noise(components.MODEL_DIR, starts=(0,), per_triple=1)
