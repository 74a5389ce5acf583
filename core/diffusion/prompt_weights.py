"""Parse the de-facto prompt emphasis syntax into weighted text segments.

The syntax is AUTOMATIC1111's (modules/prompt_parser.py, also read by ComfyUI):
``(text)`` multiplies the weight of ``text`` by 1.1, ``[text]`` divides it by 1.1, ``(text:1.3)``
multiplies it by 1.3 instead, groups nest multiplicatively, and ``\\(`` ``\\)`` ``\\[`` ``\\]``
are literal brackets. Unclosed groups apply to the end of the prompt; a stray closing bracket is
literal text.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from dataclasses import dataclass

ROUND_FACTOR = 1.1  # A1111 "attention" multiplier for ( ); its inverse for [ ]
_TOKEN = re.compile(
    r"\\[()\[\]\\]"  # escaped bracket or backslash
    r"|:\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)"  # ":1.3)" closes a group with an explicit weight
    r"|[()\[\]]"  # brackets
    r"|[^\\()\[\]:]+"  # plain text
    r"|.",  # anything else (a lone ':' or '\\') is plain text
    re.DOTALL,
)


@dataclass(frozen=True)
class WeightedText:
    """A run of prompt text and the emphasis weight of every token in it."""

    text: str
    weight: float


def parse_prompt_weights(prompt: str) -> list[WeightedText]:
    """Split ``prompt`` into runs of equal weight, in order; empty text yields no runs."""
    pieces: list[WeightedText] = []
    # Each open group: (bracket, index in `pieces` where it starts).
    open_groups: list[tuple[str, int]] = []

    def close(bracket: str, factor: float) -> None:
        for position in range(len(open_groups) - 1, -1, -1):
            if open_groups[position][0] == bracket:
                start = open_groups.pop(position)[1]
                for i in range(start, len(pieces)):
                    pieces[i] = WeightedText(pieces[i].text, pieces[i].weight * factor)
                return
        pieces.append(WeightedText(")" if bracket == "(" else "]", 1.0))

    for match in _TOKEN.finditer(prompt):
        token = match.group(0)
        if token.startswith("\\") and len(token) == 2:
            pieces.append(WeightedText(token[1], 1.0))
        elif match.group(1) is not None:
            if any(bracket == "(" for bracket, _ in open_groups):
                close("(", float(match.group(1)))
            else:
                pieces.append(WeightedText(token, 1.0))
        elif token in "([":
            open_groups.append((token, len(pieces)))
        elif token == ")":
            close("(", ROUND_FACTOR)
        elif token == "]":
            close("[", 1 / ROUND_FACTOR)
        else:
            pieces.append(WeightedText(token, 1.0))
    for bracket, start in reversed(open_groups):
        factor = ROUND_FACTOR if bracket == "(" else 1 / ROUND_FACTOR
        for i in range(start, len(pieces)):
            pieces[i] = WeightedText(pieces[i].text, pieces[i].weight * factor)
    return _merge(pieces)


def _merge(pieces: list[WeightedText]) -> list[WeightedText]:
    merged: list[WeightedText] = []
    for piece in pieces:
        if not piece.text:
            continue
        if merged and merged[-1].weight == piece.weight:
            merged[-1] = WeightedText(merged[-1].text + piece.text, piece.weight)
        else:
            merged.append(piece)
    return merged
