"""Prompt emphasis parsing (A1111 syntax)."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.diffusion.prompt_weights import WeightedText, parse_prompt_weights


def runs(prompt: str) -> list[tuple[str, float]]:
    return [(r.text, round(r.weight, 6)) for r in parse_prompt_weights(prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a (cat:1.3) on a mat", [("a ", 1.0), ("cat", 1.3), (" on a mat", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", 1.21)]),
        ("[cat]", [("cat", round(1 / 1.1, 6))]),
        ("([cat])", [("cat", 1.0)]),
        ("(a (b:2) c:0.5)", [("a ", 0.5), ("b", 1.0), (" c", 0.5)]),
        (r"a \(b\) \[c\]", [("a (b) [c]", 1.0)]),
        ("open (end", [("open ", 1.0), ("end", 1.1)]),
        ("stray ) bracket", [("stray ) bracket", 1.0)]),
        ("time 10:30", [("time 10:30", 1.0)]),
        ("(x: 1.5 )", [("x", 1.5)]),
        ("a (cat:0) b", [("a ", 1.0), ("cat", 0.0), (" b", 1.0)]),  # A1111 takes 0 and -1 too
        ("(cat:-1)", [("cat", -1.0)]),
        ("", []),
    ],
)
def test_parse(prompt, expected):
    assert runs(prompt) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="()[]\\:"), max_size=40))
def test_plain_text_is_one_unit_run(text):
    assert parse_prompt_weights(text) == ([WeightedText(text, 1.0)] if text else [])


@given(st.text(alphabet="ab ()[]:.0123456789\\", max_size=30))
@example("(0:0)")  # once found by CI: an explicit zero weight
def test_never_loses_plain_letters(prompt):
    letters = "".join(r.text for r in parse_prompt_weights(prompt))
    assert letters.count("a") == prompt.count("a")
    # Weights are products of 1.1, 1 / 1.1 and the prompt's own numbers, so with no minus sign
    # they are never negative; "(a:0)" asks for 0, as in A1111.
    assert all(math.isfinite(r.weight) and r.weight >= 0 for r in parse_prompt_weights(prompt))
