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


#: The longest prompt LatentLoom encodes: about 5,000 CLIP tokens (some 65 chunks of 75), far
#: past where more text still changes a picture, yet short enough to encode in seconds.
MAX_PROMPT_CHARACTERS = 20_000

#: How many emphasis groups may be open inside one another; real prompts stay under ten.
MAX_NESTING = 64


class PromptError(ValueError):
    """A prompt LatentLoom cannot encode; the message says why and what to change."""


def prompt_problem(prompt: str) -> str | None:
    """Why ``prompt`` cannot be encoded, in words for the user, or None when it can.

    Checks the length first, before anything reads the text, then its characters, then how deep
    its emphasis brackets go.
    """
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        return (
            f"the prompt is {len(prompt):,} characters long; the limit is "
            f"{MAX_PROMPT_CHARACTERS:,} characters (about 5,000 tokens). Shorten it."
        )
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"the prompt has an invalid character at position {exc.start + 1} "
            f"(U+{ord(prompt[exc.start]):04X}, half of a UTF-16 surrogate pair, usually left by "
            "a broken copy and paste). Delete it and retype the text around it."
        )
    try:
        parse_prompt_weights(prompt)
    except PromptError as exc:
        return str(exc)
    return None


def parse_prompt_weights(prompt: str) -> list[WeightedText]:
    """Split ``prompt`` into runs of equal weight, in order; empty text yields no runs.

    Raises ``PromptError`` when more than ``MAX_NESTING`` groups are open at once, which keeps
    the work linear in the prompt's length.
    """
    texts: list[str] = []
    weights: list[float] = []
    # Each open group: (bracket, index in `texts` where it starts).
    open_groups: list[tuple[str, int]] = []

    def scale(start: int, factor: float) -> None:
        for i in range(start, len(weights)):
            weights[i] *= factor

    def add(text: str) -> None:
        texts.append(text)
        weights.append(1.0)

    def close(bracket: str, factor: float) -> None:
        for position in range(len(open_groups) - 1, -1, -1):
            if open_groups[position][0] == bracket:
                scale(open_groups.pop(position)[1], factor)
                return
        add(")" if bracket == "(" else "]")

    for match in _TOKEN.finditer(prompt):
        token = match.group(0)
        if token.startswith("\\") and len(token) == 2:
            add(token[1])
        elif match.group(1) is not None:
            if any(bracket == "(" for bracket, _ in open_groups):
                close("(", float(match.group(1)))
            else:
                add(token)
        elif token in "([":
            if len(open_groups) == MAX_NESTING:
                raise PromptError(
                    f"the prompt opens more than {MAX_NESTING} brackets inside one another "
                    f"(at character {match.start() + 1}). Close some, or write literal "
                    "brackets as \\( \\) \\[ \\]."
                )
            open_groups.append((token, len(texts)))
        elif token == ")":
            close("(", ROUND_FACTOR)
        elif token == "]":
            close("[", 1 / ROUND_FACTOR)
        else:
            add(token)
    for bracket, start in reversed(open_groups):
        scale(start, ROUND_FACTOR if bracket == "(" else 1 / ROUND_FACTOR)
    return _merge(texts, weights)


def _merge(texts: list[str], weights: list[float]) -> list[WeightedText]:
    """Join neighbouring runs of equal weight, dropping empty ones."""
    merged: list[tuple[list[str], float]] = []
    for text, weight in zip(texts, weights, strict=True):
        if not text:
            continue
        if merged and merged[-1][1] == weight:
            merged[-1][0].append(text)
        else:
            merged.append(([text], weight))
    return [WeightedText("".join(parts), weight) for parts, weight in merged]
