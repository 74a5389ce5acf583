"""Declarative node specifications and the registry that holds them.

A spec is data: the canvas, the search palette, validation and the workflow loader read it
without running node code. Only the executor calls ``NodeSpec.function``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.graph import types as t
from core.graph.errors import DuplicateNodeTypeError, UnknownNodeTypeError

if TYPE_CHECKING:
    from core.graph.packs import PackReport


@dataclass(frozen=True)
class SocketInput:
    """An input fed only by a link (a model, a latent, an image…)."""

    name: str
    type: str
    optional: bool = False
    description: str = ""

    @property
    def link_type(self) -> str:
        return self.type


#: The most characters a text widget takes unless it says otherwise: far beyond any prompt or
#: file name, and short of what would stall the text encoder or the editor.
MAX_TEXT_LENGTH = 100_000


@dataclass(frozen=True)
class WidgetInput:
    """An input with an editable value stored in the node's params.

    A link of a compatible type may drive it instead (the linked value wins).
    ``choices_from`` names a dynamic choice list (e.g. ``"checkpoints"``) that the host fills in;
    its values are checked by the node's ``check`` hook rather than against ``choices``.
    """

    name: str
    type: str  # INT, FLOAT, STRING, BOOLEAN or COMBO
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None
    choices_from: str | None = None
    multiline: bool = False
    description: str = ""
    #: For seeds: the editor offers fixed / randomize / increment after each run.
    control_after_run: bool = False
    #: For INT widgets: values must be a multiple of this (a picture size in latent cells).
    multiple_of: int | None = None
    #: For STRING widgets: the most characters a value may have (``MAX_TEXT_LENGTH`` if None).
    max_length: int | None = None

    optional = True  # a widget always has a value, so it never needs a link

    @property
    def link_type(self) -> str:
        return t.widget_socket_type(self.type)

    def check_value(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this widget, or None when it is."""
        kind = self.type
        if kind == t.BOOLEAN:
            if isinstance(value, bool):
                return None
            return f"expected true or false, got {_shown(value)}"
        if kind == t.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected a whole number, got {_shown(value)}"
        elif kind == t.FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {_shown(value)}"
            if not math.isfinite(value):
                return f"expected a finite number, got {value}"
        elif kind in (t.STRING, t.COMBO):
            if not isinstance(value, str):
                return f"expected text, got {_shown(value)}"
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:
                    bad = value[exc.start]
                    return f"character {exc.start + 1} ({bad!a}) is a lone surrogate, not Unicode"
            limit = self.max_length or MAX_TEXT_LENGTH
            if len(value) > limit:
                return f"the text has {len(value):,} characters, more than the {limit:,} allowed"
            if kind == t.COMBO and self.choices is not None and value not in self.choices:
                return f"{_shown(value)} is not one of {', '.join(self.choices)}"
            return None
        else:
            return f"unknown widget type {kind}"
        if self.min is not None and value < self.min:
            return f"{_shown(value)} is below the minimum {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{_shown(value)} is above the maximum {self.max:g}"
        if self.multiple_of and kind == t.INT and value % self.multiple_of:
            below = value - value % self.multiple_of
            return (
                f"{value} is not a multiple of {self.multiple_of} "
                f"(use {below} or {below + self.multiple_of})"
            )
        return None


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: short, whatever the file held."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


Input = SocketInput | WidgetInput


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    description: str = ""


#: ``check(params) -> problems``: problems a node's params have outside the graph (a missing
#: file, say), each as ``(param name, message)``. Run by validation, never runs the node.
#: A widget fed by a link is absent from ``params``: its value is known only when the node runs,
#: so the node function checks it then.
CheckFn = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]]]
#: ``fingerprint(params) -> str``: a digest of state outside the graph the output depends on
#: (a file's content hash). Part of the cache key.
FingerprintFn = Callable[[Mapping[str, Any]], str]
#: ``upgrade(old_version, params) -> params``: migrates params saved by an older spec version.
UpgradeFn = Callable[[int, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class NodeSpec:
    """Everything about a node type that is not a node instance.

    ``function(ctx, **inputs)`` returns a tuple with one value per output (or a single value when
    there is one output). ``ctx`` is the engine's ``NodeContext``: cancel token, progress,
    previews, the output folder.
    """

    type_id: str
    title: str
    category: str
    function: Callable[..., Any]
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    description: str = ""
    version: int = 1
    #: Output nodes (save, preview) are what a run computes when no outputs are requested.
    output_node: bool = False
    fingerprint: FingerprintFn | None = None
    check: CheckFn | None = None
    upgrade: UpgradeFn | None = None
    #: True only for the placeholders standing in for node types this install lacks.
    placeholder: bool = False
    #: The node pack (distribution name) that provides this type; None for built-in types.
    #: Set by the registry's builder, never trusted from the pack itself.
    pack: str | None = None
    _inputs_by_name: dict[str, Input] = field(init=False, repr=False, compare=False)
    _outputs_by_name: dict[str, Output] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"node type {self.type_id}: duplicate input names {names}")
        out_names = [o.name for o in self.outputs]
        if len(set(out_names)) != len(out_names):
            raise ValueError(f"node type {self.type_id}: duplicate output names {out_names}")
        object.__setattr__(self, "_inputs_by_name", {i.name: i for i in self.inputs})
        object.__setattr__(self, "_outputs_by_name", {o.name: o for o in self.outputs})

    def input(self, name: str) -> Input | None:
        return self._inputs_by_name.get(name)

    def output(self, name: str) -> Output | None:
        return self._outputs_by_name.get(name)

    @property
    def widgets(self) -> tuple[WidgetInput, ...]:
        return tuple(i for i in self.inputs if isinstance(i, WidgetInput))

    @property
    def sockets(self) -> tuple[SocketInput, ...]:
        return tuple(i for i in self.inputs if isinstance(i, SocketInput))

    def default_params(self) -> dict[str, Any]:
        return {w.name: w.default for w in self.widgets}


def _passthrough(ctx: Any, **inputs: Any) -> Any:
    return inputs.get("value")


#: The reroute dot: one wildcard input passed through unchanged. Every registry has it.
REROUTE = NodeSpec(
    type_id="Reroute",
    title="Reroute",
    category="utils",
    function=_passthrough,
    inputs=(SocketInput("value", t.ANY),),
    outputs=(Output("value", t.ANY),),
    description="A dot that routes a link; takes the type of what feeds it.",
)


def placeholder_spec(
    type_id: str,
    inputs: Iterable[tuple[str, str]],
    outputs: Iterable[tuple[str, str]],
    params: Mapping[str, Any] = (),  # type: ignore[assignment]
    output_node: bool = False,
    pack: str | None = None,
    why_missing: str = "",
) -> NodeSpec:
    """A stand-in for a node type this install lacks, keeping its sockets and params, and
    whether it was an output node (so validation knows a run would need it).

    ``pack`` is the node pack the workflow says the type came from (kept so a save writes it
    again); ``why_missing`` says what became of that pack ("node pack 'x', which is
    disabled")."""

    def missing(ctx: Any, **_: Any) -> Any:
        raise RuntimeError(f"node type {type_id!r} is not installed")

    if pack is None:
        title = f"{type_id} (missing)"
        description = f"Node type {type_id!r} is not installed; its sockets and values are kept."
    else:
        reason = why_missing or f"node pack {pack!r}"
        title = f"{type_id} (missing: {pack})"
        description = f"Node type {type_id!r} comes from {reason}; its sockets and values are kept."

    widget_inputs = tuple(
        WidgetInput(name, _json_type(value), value) for name, value in dict(params).items()
    )
    socket_inputs = tuple(
        SocketInput(name, kind, optional=True) for name, kind in inputs if name not in dict(params)
    )
    return NodeSpec(
        type_id=type_id,
        title=title,
        category="missing",
        function=missing,
        inputs=socket_inputs + widget_inputs,
        outputs=tuple(Output(name, kind) for name, kind in outputs),
        description=description,
        output_node=output_node,
        placeholder=True,
        pack=pack,
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return t.BOOLEAN
    if isinstance(value, int):
        return t.INT
    if isinstance(value, float):
        return t.FLOAT
    return t.STRING


class NodeRegistry:
    """The node types one application (or test) knows. Built and passed in, never global.

    ``choice_providers`` fill the dynamic choice lists that widgets name in ``choices_from``
    (the checkpoint files found in the model folders, say). ``packs`` reports every installed
    node pack, loaded or not, so a placeholder can say what became of its pack.
    """

    def __init__(
        self,
        specs: Iterable[NodeSpec] = (),
        choice_providers: Mapping[str, Callable[[], Sequence[str]]] | None = None,
        packs: Iterable[PackReport] = (),
    ) -> None:
        self._specs: dict[str, NodeSpec] = {REROUTE.type_id: REROUTE}
        self._choice_providers = dict(choice_providers or {})
        self.packs: tuple[PackReport, ...] = tuple(packs)
        for spec in specs:
            self.register(spec)

    def pack_report(self, name: str) -> PackReport | None:
        """The report of the installed pack called ``name`` (None: not installed)."""
        return next((report for report in self.packs if report.name == name), None)

    def choices(self, widget: WidgetInput) -> tuple[str, ...] | None:
        """The values a combo widget offers now: its fixed choices or its provider's list."""
        if widget.choices_from is not None and widget.choices_from in self._choice_providers:
            return tuple(self._choice_providers[widget.choices_from]())
        return widget.choices

    def register(self, spec: NodeSpec) -> None:
        if spec.type_id in self._specs:
            raise DuplicateNodeTypeError(f"node type {spec.type_id!r} is registered twice")
        self._specs[spec.type_id] = spec

    def get(self, type_id: str) -> NodeSpec:
        try:
            return self._specs[type_id]
        except KeyError:
            raise UnknownNodeTypeError(f"unknown node type {type_id!r}") from None

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._specs

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def categories(self) -> dict[str, list[NodeSpec]]:
        out: dict[str, list[NodeSpec]] = {}
        for spec in sorted(self._specs.values(), key=lambda s: (s.category, s.title)):
            out.setdefault(spec.category, []).append(spec)
        return out
