"""Widget value rules declared in specs."""

from __future__ import annotations

from core.graph import types as t
from core.graph.spec import MAX_TEXT_LENGTH, WidgetInput


def test_multiple_of_refuses_other_values_and_names_the_nearest_allowed():
    width = WidgetInput("width", t.INT, 512, min=16, max=4096, multiple_of=8)
    assert width.check_value(520) is None
    assert width.check_value(17) == "17 is not a multiple of 8 (use 16 or 24)"
    assert width.check_value(1003) == "1003 is not a multiple of 8 (use 1000 or 1008)"
    assert "minimum" in width.check_value(8)


def test_without_multiple_of_any_whole_number_in_range_is_accepted():
    assert WidgetInput("steps", t.INT, 20, min=1, max=100).check_value(17) is None


def test_text_with_a_lone_surrogate_is_refused_with_its_position():
    text = WidgetInput("text", t.STRING, "")
    assert text.check_value("a red circle") is None
    assert text.check_value("café ok") is None
    reason = text.check_value("a red \ud800 circle")
    assert reason == "character 7 ('\\ud800') is a lone surrogate, not Unicode"


def test_text_longer_than_the_limit_is_refused():
    text = WidgetInput("text", t.STRING, "")
    assert text.check_value("x" * MAX_TEXT_LENGTH) is None
    assert "100,001 characters, more than the 100,000 allowed" in text.check_value(
        "x" * (MAX_TEXT_LENGTH + 1)
    )
    assert WidgetInput("name", t.STRING, "", max_length=5).check_value("abcdef") is not None


def test_messages_quote_huge_or_long_values_briefly():
    seed = WidgetInput("seed", t.INT, 0, min=0, max=2**64 - 1)
    message = seed.check_value(10**400)
    assert message == "a number of about 401 digits is above the maximum 1.84467e+19"
    choice = WidgetInput("sampler", t.COMBO, "euler", choices=("euler",))
    long_text = choice.check_value("x" * 5000)
    assert long_text is not None and len(long_text) < 100
