"""Node packs: node types from other installed Python packages.

A pack is an ordinary distribution that declares an entry point in the ``latentloom.nodes``
group (see ``docs/node-packs.md``). Loading an entry point imports the pack's code: this is the
one place LatentLoom runs third-party code, and only that of packages the user installed.
LatentLoom itself never downloads or installs anything.

Each pack is loaded and checked on its own: one that fails to import, raises, or returns specs
that are not valid (a duplicate or built-in type name, an unknown socket type, a widget default
its own widget refuses) is skipped as a whole and reported with its name and the reason; the
built-in nodes and every other pack still load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

from core.graph import types as t
from core.graph.packs import ENTRY_POINT_GROUP, NodePack, PackReport, PackStatus
from core.graph.spec import REROUTE, NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput

#: Packs to leave unloaded, by distribution name, separated by commas (the CLI's switch; the
#: editor has its own in Settings).
DISABLED_ENVIRONMENT = "LATENTLOOM_DISABLED_PACKS"
#: What a socket type a pack introduces must look like: upper case, like the built-in ones.
SOCKET_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
WIDGET_TYPES = frozenset({t.INT, t.FLOAT, t.STRING, t.BOOLEAN, t.COMBO})


class PackError(Exception):
    """A pack whose entry point gave something LatentLoom cannot use; the message says what."""


@dataclass(frozen=True)
class LoadedPacks:
    """The specs of every pack that loaded (each marked with its pack) and a report per pack."""

    specs: tuple[NodeSpec, ...]
    reports: tuple[PackReport, ...]


def normalized(name: str) -> str:
    """A distribution name as packaging compares them: ``Example_Pack`` is ``example-pack``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def disabled_from_environment() -> tuple[str, ...]:
    """The pack names listed in ``$LATENTLOOM_DISABLED_PACKS``."""
    raw = os.environ.get(DISABLED_ENVIRONMENT, "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def installed_entry_points() -> list[metadata.EntryPoint]:
    """Every entry point in the ``latentloom.nodes`` group of the distributions on sys.path."""
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_packs(
    builtin: Iterable[NodeSpec],
    disabled: Iterable[str] = (),
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> LoadedPacks:
    """Loads every pack not in ``disabled``, in order of name, checking its specs against the
    built-in types (which a pack may not replace) and those of the packs before it."""
    off = {normalized(name) for name in disabled}
    owners = {spec.type_id: "a built-in node" for spec in (REROUTE, *builtin)}
    specs: list[NodeSpec] = []
    reports = []
    for name, version, group in _by_distribution(entry_points):
        declared = tuple(f"{ep.name} = {ep.value}" for ep in group)
        report = PackReport(name, version, PackStatus.DISABLED, entry_points=declared)
        if normalized(name) not in off:
            try:
                pack_specs, socket_types = _load(name, group, owners)
            except PackError as exc:
                report = replace(report, status=PackStatus.FAILED, error=str(exc))
            else:
                specs += pack_specs
                owners |= {spec.type_id: f"node pack {name!r}" for spec in pack_specs}
                report = replace(
                    report,
                    status=PackStatus.OK,
                    node_types=tuple(spec.type_id for spec in pack_specs),
                    socket_types=socket_types,
                )
        reports.append(report)
    return LoadedPacks(tuple(specs), tuple(reports))


def add_packs(
    registry: NodeRegistry,
    disabled: Iterable[str] = (),
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> NodeRegistry:
    """Registers the node types of every pack that loads into ``registry`` (which holds the
    built-in ones) and records every pack's report in ``registry.packs``; returns it."""
    loaded = load_packs(registry, disabled, entry_points)
    for spec in loaded.specs:
        registry.register(spec)
    registry.packs = loaded.reports
    return registry


def _by_distribution(
    entry_points: Iterable[metadata.EntryPoint] | None,
) -> list[tuple[str, str, list[metadata.EntryPoint]]]:
    """Entry points grouped into packs, one per distribution, sorted by name."""
    found = installed_entry_points() if entry_points is None else entry_points
    groups: dict[str, tuple[str, str, list[metadata.EntryPoint]]] = {}
    for ep in found:
        dist = ep.dist
        name = dist.name if dist is not None else ep.name
        version = dist.version if dist is not None else ""
        groups.setdefault(normalized(name), (name, version, []))[2].append(ep)
    return [groups[key] for key in sorted(groups)]


def _load(
    pack: str, group: Sequence[metadata.EntryPoint], owners: dict[str, str]
) -> tuple[list[NodeSpec], tuple[str, ...]]:
    """The pack's specs (marked with its name) and socket types, or PackError saying why not."""
    specs: list[NodeSpec] = []
    socket_types: list[str] = []
    for ep in group:
        where = f"entry point {ep.name!r} ({ep.value})"
        try:
            made = ep.load()
            if callable(made) and not isinstance(made, NodePack):
                made = made()
            if isinstance(made, NodePack):
                found, types = list(made.specs), list(made.socket_types)
            elif isinstance(made, Iterable) and not isinstance(made, (str, bytes, dict)):
                found, types = list(made), []
            else:
                raise PackError(
                    f"{where} gave {type(made).__name__}; it should give a list of NodeSpecs "
                    "or a NodePack (or a function returning one)"
                )
        except PackError:
            raise
        except (Exception, SystemExit) as exc:  # third-party code may raise anything
            raise PackError(f"{where} raised {type(exc).__name__}: {_one_line(exc)}") from None
        for name in types:
            if not isinstance(name, str) or not SOCKET_TYPE_NAME.fullmatch(name):
                raise PackError(
                    f"{where} declares the socket type {name!r}; socket type names are upper "
                    "case letters, digits and underscores, starting with a letter"
                )
        specs += found
        socket_types += [name for name in types if name not in socket_types]
    known = {*t.SOCKET_TYPES, t.ANY, *socket_types}
    marked = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, NodeSpec):
            raise PackError(f"item {index + 1} is a {type(spec).__name__}, not a NodeSpec")
        _check_spec(spec, known)
        owner = owners.get(spec.type_id) or (
            "this pack" if any(s.type_id == spec.type_id for s in marked) else None
        )
        if owner is not None:
            raise PackError(
                f"node type {spec.type_id!r} is already defined by {owner}; give the pack's "
                "node a name of its own (a prefix such as 'MyPack.' avoids clashes)"
            )
        marked.append(replace(spec, pack=pack, placeholder=False))
    new_types = tuple(name for name in socket_types if name not in t.SOCKET_TYPES)
    return marked, new_types


def _check_spec(spec: NodeSpec, known: set[str]) -> None:
    """Raises PackError naming the node type and field when ``spec`` is not usable."""
    type_id = spec.type_id
    if not isinstance(type_id, str) or not type_id.strip() or type_id != type_id.strip():
        raise PackError(
            f"a node type name must be non-empty text without outer spaces: {type_id!r}"
        )
    where = f"node type {type_id!r}"
    if not callable(spec.function):
        raise PackError(f"{where}: its function is not callable")
    for field_name in ("title", "category"):
        if not isinstance(getattr(spec, field_name), str):
            raise PackError(f"{where}: its {field_name} should be text")
    for inp in spec.inputs:
        if isinstance(inp, WidgetInput):
            if inp.type not in WIDGET_TYPES:
                raise PackError(
                    f"{where}: widget {inp.name!r} has type {inp.type!r}; widgets are "
                    f"{', '.join(sorted(WIDGET_TYPES))}"
                )
            if inp.choices_from is None or inp.choices is not None:
                reason = inp.check_value(inp.default)
                if reason is not None:
                    raise PackError(f"{where}: widget {inp.name!r} has a bad default: {reason}")
        elif isinstance(inp, SocketInput):
            _check_type(where, f"input {inp.name!r}", inp.type, known)
        else:
            raise PackError(f"{where}: input {inp!r} is neither a SocketInput nor a WidgetInput")
    for out in spec.outputs:
        if not isinstance(out, Output):
            raise PackError(f"{where}: output {out!r} is not an Output")
        _check_type(where, f"output {out.name!r}", out.type, known)


def _check_type(where: str, what: str, kind: Any, known: set[str]) -> None:
    if kind not in known:
        raise PackError(
            f"{where}: {what} has socket type {kind!r}, which is neither built in nor declared "
            "by the pack; return NodePack(specs, socket_types=[...]) to declare it"
        )


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(reports: Sequence[PackReport]) -> list[str]:
    """The packs as the CLI lists them: one line each, with the node types of those loaded."""
    if not reports:
        return [f"No node packs installed (none declares a {ENTRY_POINT_GROUP!r} entry point)."]
    lines = []
    for report in reports:
        lines.append(report.summary())
        lines += [f"    {type_id}" for type_id in report.node_types]
    return lines


def failures(reports: Sequence[PackReport]) -> list[str]:
    """One line per pack that failed, for the start of a CLI command."""
    return [
        f"node pack {r.name!r} was skipped: {r.error}"
        for r in reports
        if r.status is PackStatus.FAILED
    ]
