"""Constants, arithmetic and text: the small nodes that feed widgets and test the engine."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.outputs import output_name_problems, write_output

_BIG = 2**63 - 1


def _constant(ctx: Any, value: Any) -> Any:
    return value


_FLOAT_OPS: dict[str, Callable[[float, float], float]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "power": operator.pow,
    "min": min,
    "max": max,
}
_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "floor_divide": operator.floordiv,
    "modulo": operator.mod,
    "min": min,
    "max": max,
}
FLOAT_OPS = tuple(_FLOAT_OPS)
INT_OPS = tuple(_INT_OPS)


def _apply(ops: Mapping[str, Callable[[Any, Any], Any]], a: Any, b: Any, op: str) -> Any:
    try:
        return ops[op](a, b)
    except ZeroDivisionError:
        from core.engine import NodeError

        message = f"{op.replace('_', ' ')} by zero: set b to a non-zero number"
        raise NodeError(message, field="b") from None
    except OverflowError:
        from core.engine import NodeError

        raise NodeError(f"{a} {op} {b} is too large to represent", field="b") from None


def _float_math(ctx: Any, a: float, b: float, op: str) -> float:
    return float(_apply(_FLOAT_OPS, a, b, op))


def _int_math(ctx: Any, a: int, b: int, op: str) -> int:
    return int(_apply(_INT_OPS, a, b, op))


def _text_join(ctx: Any, a: str, b: str, separator: str) -> str:
    return separator.join(s for s in (a, b) if s)


def _save_text(ctx: Any, text: str, filename: str) -> tuple[()]:
    from core.engine import NodeError

    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NodeError(
            f"'text': character {exc.start + 1} ({text[exc.start]!a}) is a lone surrogate, "
            "not Unicode, so the text cannot be written as UTF-8: fix the text that feeds it",
            field="text",
        ) from None
    path = write_output(ctx, "filename", filename, ".txt", data, plain_first=True)
    ctx.record("file", str(path))
    return ()


SPECS = (
    NodeSpec(
        "Int",
        "Integer",
        "primitives",
        _constant,
        inputs=(WidgetInput("value", t.INT, 0, min=-_BIG, max=_BIG, step=1),),
        outputs=(Output("INT", t.INT),),
        description="A whole number, to feed any INT input (a seed, a size, a step count).",
    ),
    NodeSpec(
        "Float",
        "Float",
        "primitives",
        _constant,
        inputs=(WidgetInput("value", t.FLOAT, 0.0, step=0.01),),
        outputs=(Output("FLOAT", t.FLOAT),),
        description="A number, to feed any FLOAT input (CFG, denoise, strength).",
    ),
    NodeSpec(
        "String",
        "Text",
        "primitives",
        _constant,
        inputs=(WidgetInput("value", t.STRING, "", multiline=True),),
        outputs=(Output("STRING", t.STRING),),
        description="A piece of text, e.g. a prompt shared by several encoders.",
    ),
    NodeSpec(
        "Boolean",
        "Boolean",
        "primitives",
        _constant,
        inputs=(WidgetInput("value", t.BOOLEAN, False),),
        outputs=(Output("BOOLEAN", t.BOOLEAN),),
        description="True or false.",
    ),
    NodeSpec(
        "FloatMath",
        "Math (Float)",
        "primitives",
        _float_math,
        inputs=(
            WidgetInput("a", t.FLOAT, 0.0, step=0.01),
            WidgetInput("b", t.FLOAT, 0.0, step=0.01),
            WidgetInput("op", t.COMBO, "add", choices=FLOAT_OPS),
        ),
        outputs=(Output("FLOAT", t.FLOAT),),
        description="a (op) b on numbers; INT inputs convert to FLOAT.",
    ),
    NodeSpec(
        "IntMath",
        "Math (Integer)",
        "primitives",
        _int_math,
        inputs=(
            WidgetInput("a", t.INT, 0, min=-_BIG, max=_BIG),
            WidgetInput("b", t.INT, 0, min=-_BIG, max=_BIG),
            WidgetInput("op", t.COMBO, "add", choices=INT_OPS),
        ),
        outputs=(Output("INT", t.INT),),
        description="a (op) b on whole numbers.",
    ),
    NodeSpec(
        "TextJoin",
        "Join Text",
        "primitives",
        _text_join,
        inputs=(
            WidgetInput("a", t.STRING, "", multiline=True),
            WidgetInput("b", t.STRING, "", multiline=True),
            WidgetInput("separator", t.STRING, ", "),
        ),
        outputs=(Output("STRING", t.STRING),),
        description="Joins two texts (empty ones are left out), e.g. a subject and a style.",
    ),
    NodeSpec(
        "SaveText",
        "Save Text",
        "primitives",
        _save_text,
        inputs=(
            SocketInput("text", t.STRING),
            WidgetInput(
                "filename",
                t.STRING,
                "text",
                description="file name without .txt; 'folder/name' saves in a subfolder",
            ),
        ),
        output_node=True,
        description="Writes text to FILENAME.txt in the output folder. When that file exists, "
        "it is kept and the text goes to the next free FILENAME_00001.txt, …; nothing is "
        "written outside the output folder.",
        check=output_name_problems("filename"),
    ),
)
