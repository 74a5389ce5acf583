"""Huge and broken prompts: clear errors before any work, and cancellable long encodings."""

from __future__ import annotations

import time

import pytest

from core.diffusion.loading import load_checkpoint
from core.diffusion.prompt_weights import (
    MAX_NESTING,
    MAX_PROMPT_CHARACTERS,
    PromptError,
    parse_prompt_weights,
    prompt_problem,
)
from core.diffusion.text_encoding import encode_prompt


@pytest.fixture(scope="module")
def clips(tiny_files):
    return {v: load_checkpoint(tiny_files[(v, "safetensors")]).clip for v in ("sd1", "sdxl")}


def test_a_prompt_at_the_limit_is_accepted_and_one_past_it_is_not():
    assert prompt_problem("x" * MAX_PROMPT_CHARACTERS) is None
    problem = prompt_problem("x" * (MAX_PROMPT_CHARACTERS + 1))
    assert problem is not None
    assert "20,001 characters" in problem and "limit is 20,000" in problem


def test_a_50_megabyte_prompt_is_refused_at_once(clips):
    started = time.perf_counter()
    with pytest.raises(PromptError, match="the limit is 20,000 characters"):
        encode_prompt(clips["sd1"], "a red circle, " * 3_600_000)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("surrogate", ["\ud800", "\udfff"])
def test_a_lone_surrogate_is_refused_with_its_position(clips, surrogate):
    with pytest.raises(PromptError) as info:
        encode_prompt(clips["sd1"], f"a red{surrogate} circle")
    message = str(info.value)
    assert "position 6" in message
    assert f"U+{ord(surrogate):04X}" in message


def test_a_proper_surrogate_pair_character_is_fine(clips):
    assert prompt_problem("a red circle 🙂") is None
    encode_prompt(clips["sd1"], "a red circle 🙂")


def test_brackets_nested_too_deep_are_refused_quickly():
    started = time.perf_counter()
    with pytest.raises(PromptError, match=f"more than {MAX_NESTING} brackets") as info:
        parse_prompt_weights("(a" * 10_000)
    assert f"character {2 * MAX_NESTING + 1}" in str(info.value)
    assert time.perf_counter() - started < 1.0


def test_deepest_allowed_nesting_still_weighs_words():
    [run] = parse_prompt_weights("(" * MAX_NESTING + "cat" + ")" * MAX_NESTING)
    assert run.text == "cat"
    assert run.weight == pytest.approx(1.1**MAX_NESTING)


def test_many_separate_pieces_parse_in_linear_time():
    started = time.perf_counter()
    runs = parse_prompt_weights("(" * MAX_NESTING + "a:" * 9_900 + ")" * MAX_NESTING)
    assert time.perf_counter() - started < 1.0
    assert [run.text for run in runs] == ["a:" * 9_900]


@pytest.mark.parametrize(("variant", "encoders"), [("sd1", 1), ("sdxl", 2)])
def test_each_chunk_of_each_encoder_is_preceded_by_the_check(clips, variant, encoders):
    calls = []
    encode_prompt(clips[variant], "cat " * 200, before_chunk=lambda: calls.append(1))
    assert len(calls) == 3 * encoders  # 200 tokens: three chunks of at most 75


class _Stop(Exception):
    """Raised by the check to stop an encoding."""


def test_a_raising_check_stops_a_long_prompt_between_chunks(clips):
    calls = []

    def before_chunk() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        encode_prompt(clips["sd1"], "cat " * 1_000, before_chunk=before_chunk)
    assert len(calls) == 2
