"""The rule for a guidance interval, without torch: pre-run checks in the editor and the CLI
use it before any model is loaded."""

from __future__ import annotations


def guidance_interval_problem(low: float, high: float) -> str | None:
    """Why (``low``, ``high``] is no usable guidance interval, or None when it is."""
    if 0.0 <= low < high:
        return None
    return (
        f"the guidance interval ({low:g}, {high:g}] is empty: sigma_low must be at least 0 "
        "and below sigma_high"
    )
