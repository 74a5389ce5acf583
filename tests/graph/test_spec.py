"""Widget value rules declared in specs."""

from __future__ import annotations

from core.graph import types as t
from core.graph.spec import WidgetInput


def test_multiple_of_refuses_other_values_and_names_the_nearest_allowed():
    width = WidgetInput("width", t.INT, 512, min=16, max=4096, multiple_of=8)
    assert width.check_value(520) is None
    assert width.check_value(17) == "17 is not a multiple of 8 (use 16 or 24)"
    assert width.check_value(1003) == "1003 is not a multiple of 8 (use 1000 or 1008)"
    assert "minimum" in width.check_value(8)


def test_without_multiple_of_any_whole_number_in_range_is_accepted():
    assert WidgetInput("steps", t.INT, 20, min=1, max=100).check_value(17) is None
