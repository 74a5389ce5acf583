"""Sweeps: one workflow run many times over axes of widget values, as a pure plan.

An axis names a widget of a node (``5.seed``, ``2.text``) and lists its values: a list
(``3,5,7``, quoted like CSV when a value holds a comma), an inclusive range (``0..15``,
``3..9 step 2``, ``1..2 step 0.25``) or the lines of a text file (``@prompts.txt``). Axes
combine as a product (X × Y × Z…) or are zipped; a batch count repeats every combination with
each seed's after-run mode applied (fixed, increment, randomize), as a queued run would.

``make_sweep`` validates every run before anything runs, computes each run's cache keys with
the engine's own key function, and orders the runs so that runs sharing upstream results run
one after another (``order_by_shared_keys``); ``assign_to_workers`` splits that order into
contiguous, balanced shares that cut where runs share least, so each worker loads each
checkpoint and encodes each prompt of its share once. No torch, no Qt, no Ray here: the local
and the Ray runner (``core.engine.sweep_runs``, ``core.engine.sweep_ray``) execute the plan.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine.errors import Problem
from core.engine.keys import compute_keys
from core.engine.plan import Plan, make_plan
from core.engine.validate import validate_plan
from core.graph import types as t
from core.graph.model import Graph, NodeId
from core.graph.spec import NodeRegistry, WidgetInput
from core.graph.workflow import from_dict, to_dict

#: How axes combine: every combination, or the i-th value of each axis together.
PRODUCT, ZIP = "product", "zip"
#: The most runs one sweep may plan; a typo such as ``0..100000`` is refused, not started.
MAX_RUNS = 10_000
#: The after-run modes of a seed widget, stored in ``node.ui["control_after_run"][name]``.
SEED_MODES = ("fixed", "randomize", "increment")
_SEED_MAX = 2**53 - 1
#: Socket types whose values are models: a workflow carrying them wants an accelerator.
MODEL_TYPES = frozenset({"MODEL", "CLIP", "VAE", "CLIP_VISION", "CONTROL_NET", "UPSCALE_MODEL"})


class SweepError(ValueError):
    """A sweep that cannot be planned; the message is one line naming the axis or the run."""


@dataclass(frozen=True)
class Axis:
    """One swept widget and its values, in the order the grid shows them."""

    node_id: NodeId
    param: str
    values: tuple[Any, ...]
    #: What the grid labels the axis with (the node's title and the widget's name).
    title: str = ""

    @property
    def name(self) -> str:
        return f"{self.node_id}.{self.param}"

    def label(self, index: int) -> str:
        """The text of the ``index``-th value as a grid header shows it."""
        value = self.values[index]
        return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: where it sits in the grid and the params it sets."""

    #: Position in grid order (X fastest, then Y, then Z…, then the batch repeat).
    index: int
    #: Index along each axis (zip: the same index on every axis).
    coords: tuple[int, ...]
    #: 0 for the first of a batch, 1… for the repeats.
    repeat: int
    #: Every param this run sets: (node id, param name, value), axes first, then seeds.
    values: tuple[tuple[NodeId, str, Any], ...]

    def label(self, axes: Sequence[Axis]) -> str:
        """``5.seed=3, 5.cfg=7`` (and ``#2`` for a repeat), for progress and errors."""
        parts = [f"{a.name}={a.label(i)}" for a, i in zip(axes, self.coords, strict=True)]
        if self.repeat:
            parts.append(f"#{self.repeat + 1}")
        return ", ".join(parts) or "the workflow"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "coords": list(self.coords),
            "repeat": self.repeat,
            "values": [[n, p, v] for n, p, v in self.values],
        }


@dataclass(frozen=True)
class SweepStats:
    """What the cache is expected to save: node executions with no cache at all, and with a
    cache that keeps every result (each distinct cache key computed once)."""

    runs: int
    nodes_per_run: int
    distinct_results: int

    @property
    def without_cache(self) -> int:
        return self.runs * self.nodes_per_run

    @property
    def saved(self) -> int:
        return self.without_cache - self.distinct_results


@dataclass(frozen=True)
class SweepPlan:
    """Runs of one workflow in execution order, and everything a runner or the grid needs."""

    workflow: dict[str, Any]
    axes: tuple[Axis, ...]
    mode: str
    batch_count: int
    #: The runs in execution order (cache-friendly), each knowing its grid position.
    runs: tuple[SweepRun, ...]
    #: Each run's cache keys over ``node_order``, by run index.
    keys: Mapping[int, tuple[str | None, ...]]
    node_order: tuple[NodeId, ...]
    stats: SweepStats
    #: Whether a planned node loads a model (a worker should get a GPU when there is one).
    uses_models: bool = False
    outputs: tuple[NodeId, ...] | None = None

    def run(self, index: int) -> SweepRun:
        for run in self.runs:
            if run.index == index:
                return run
        raise KeyError(index)

    def grid_shape(self) -> tuple[int, int, int]:
        """Columns, rows and pages of the grid (pages: Z values × further axes × repeats)."""
        if self.mode == ZIP or not self.axes:
            return max(1, len(self.axes[0].values) if self.axes else 1), 1, self.batch_count
        sizes = [len(a.values) for a in self.axes]
        columns = sizes[0]
        rows = sizes[1] if len(sizes) > 1 else 1
        return columns, rows, math.prod(sizes[2:]) * self.batch_count

    def cell_of(self, run: SweepRun) -> tuple[int, int, int]:
        """The (column, row, page) of ``run`` in the grid."""
        if self.mode == ZIP or not self.axes:
            return (run.coords[0] if run.coords else 0), 0, run.repeat
        column = run.coords[0]
        row = run.coords[1] if len(run.coords) > 1 else 0
        page = 0
        for axis, coord in zip(self.axes[2:], run.coords[2:], strict=True):
            page = page * len(axis.values) + coord
        pages = math.prod(len(a.values) for a in self.axes[2:])
        return column, row, run.repeat * pages + page

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready data (for ``sweep.json``)."""
        return {
            "axes": [
                {"name": a.name, "title": a.title, "values": list(a.values)} for a in self.axes
            ],
            "mode": self.mode,
            "batch_count": self.batch_count,
            "runs": len(self.runs),
            "order": [run.index for run in self.runs],
            "node_executions": {
                "without_cache": self.stats.without_cache,
                "distinct_results": self.stats.distinct_results,
            },
        }


# --- axes ---------------------------------------------------------------------------------


def parse_axis(text: str, graph: Graph, base: Path | None = None) -> Axis:
    """An axis from ``NODE.PARAM=VALUES`` (see the module docstring); ``@FILE`` is read
    relative to ``base`` (default: the current folder). Raises ``SweepError``."""
    target, sep, values_text = text.partition("=")
    node_text, dot, param = target.strip().partition(".")
    if not (sep and dot and node_text.isdigit() and param):
        raise SweepError(
            f"axis {text!r}: write it as NODE.PARAM=VALUES, e.g. 5.seed=0..15 or 5.cfg=3,5,7"
        )
    return make_axis(graph, int(node_text), param, split_values(values_text, text, base))


def split_values(values_text: str, where: str, base: Path | None = None) -> list[str] | range:
    """The value texts of an axis: a list, a range (kept as text ``A..B step S``) or lines."""
    values_text = values_text.strip()
    if values_text.startswith("@"):
        path = Path(values_text[1:]).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise SweepError(f"axis {where!r}: cannot read {path} ({why})") from None
        values = [line.strip() for line in lines if line.strip()]
        if not values:
            raise SweepError(f"axis {where!r}: {path} has no non-empty lines")
        return values
    if ".." in values_text and not values_text.startswith(('"', "'")):
        return [values_text]  # a range: expanded once the widget's type is known
    values = [v.strip() for row in csv.reader([values_text], skipinitialspace=True) for v in row]
    if not values or values == [""]:
        raise SweepError(f"axis {where!r}: give values, e.g. 3,5,7 or 0..15 or @lines.txt")
    return values


def make_axis(
    graph: Graph, node_id: NodeId, param: str, values: Iterable[Any], typed: bool = False
) -> Axis:
    """An axis over ``node_id.param``; ``values`` are texts (parsed by the widget's type,
    ranges expanded) unless ``typed``. Each value is checked against the widget."""
    name = f"{node_id}.{param}"
    if node_id not in graph:
        raise SweepError(f"axis {name}: the workflow has no node {node_id}")
    spec = graph.spec(node_id)
    widget = spec.input(param)
    if not isinstance(widget, WidgetInput):
        names = ", ".join(w.name for w in spec.widgets) or "none"
        raise SweepError(f"axis {name}: node {node_id} has no field {param!r} (it has: {names})")
    if graph.link_to(node_id, param) is not None:
        raise SweepError(f"axis {name}: the field is driven by a link; sweep its source instead")
    texts = list(values)
    parsed = texts if typed else _typed_values(widget, texts, name)
    if not parsed:
        raise SweepError(f"axis {name}: no values")
    choices = graph.registry.choices(widget)
    for value in parsed:
        reason = widget.check_value(value)
        if reason is None and choices is not None and value not in choices:
            shown = ", ".join(map(str, list(choices)[:8]))
            reason = f"{value!r} is not one of the choices ({shown})"
        if reason is not None:
            raise SweepError(f"axis {name}: {reason}")
    node = graph.node(node_id)
    title = f"{node.title or spec.title} {param}"
    return Axis(node_id, param, tuple(parsed), title)


def _typed_values(widget: WidgetInput, texts: list[str], name: str) -> list[Any]:
    if len(texts) == 1 and ".." in texts[0] and widget.type in (t.INT, t.FLOAT):
        return _expand_range(texts[0], widget.type == t.INT, name)
    out: list[Any] = []
    for text in texts:
        try:
            if widget.type == t.INT:
                out.append(int(text))
            elif widget.type == t.FLOAT:
                out.append(float(text))
            elif widget.type == t.BOOLEAN:
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out.append(lowered in ("true", "1", "yes"))
            else:
                out.append(text)
        except ValueError:
            kind = {t.INT: "a whole number", t.FLOAT: "a number"}.get(widget.type, "true or false")
            raise SweepError(f"axis {name}: {text!r} is not {kind}") from None
    return out


def _expand_range(text: str, integer: bool, name: str) -> list[Any]:
    """``A..B`` or ``A..B step S``, both ends included; descending when A > B."""
    span, _, step_text = text.partition("step")
    low_text, _, high_text = span.partition("..")
    number = int if integer else float
    try:
        start, stop = number(low_text.strip()), number(high_text.strip())
        step = number(step_text.strip()) if step_text.strip() else number(1)
    except ValueError:
        kind = "whole numbers" if integer else "numbers"
        raise SweepError(
            f"axis {name}: {text!r} is not a range of {kind}; write A..B or A..B step S"
        ) from None
    if step == 0 or not math.isfinite(step):
        raise SweepError(f"axis {name}: the step of {text!r} must not be 0")
    step = abs(step) if stop >= start else -abs(step)
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RUNS:
        raise SweepError(f"axis {name}: {text!r} has {count:,} values, more than {MAX_RUNS:,}")
    if integer:
        return [start + i * step for i in range(count)]
    return [round(start + i * step, 10) for i in range(count)]


# --- runs ---------------------------------------------------------------------------------


def expand_runs(
    graph: Graph,
    axes: Sequence[Axis],
    mode: str = PRODUCT,
    batch_count: int = 1,
    seed: int = 0,
) -> list[SweepRun]:
    """Every run in grid order (X fastest). Repeats apply each seed's after-run mode:
    *increment* adds the repeat number, *randomize* draws from ``seed`` (so the plan is
    reproducible, and each picture's embedded workflow holds the seed it used)."""
    if mode not in (PRODUCT, ZIP):
        raise SweepError(f"sweep mode {mode!r}: use {PRODUCT!r} or {ZIP!r}")
    if batch_count < 1:
        raise SweepError(f"batch count {batch_count}: give 1 or more")
    names = [a.name for a in axes]
    for name in names:
        if names.count(name) > 1:
            raise SweepError(f"axis {name} is given twice; give each field one axis")
    if mode == ZIP and axes:
        lengths = {len(a.values) for a in axes}
        if len(lengths) > 1:
            shown = ", ".join(f"{a.name}: {len(a.values)}" for a in axes)
            raise SweepError(f"zipped axes need as many values each ({shown})")
        combos = [tuple(i for _ in axes) for i in range(len(axes[0].values))]
    else:
        combos = [c[::-1] for c in itertools.product(*(range(len(a.values)) for a in axes[::-1]))]
    total = len(combos) * batch_count
    if total > MAX_RUNS:
        raise SweepError(f"the sweep has {total:,} runs, more than {MAX_RUNS:,}: use fewer values")
    seeds = _seed_widgets(graph)
    rng = random.Random(seed)
    runs = []
    for repeat in range(batch_count):
        for coords in combos:
            values = [(a.node_id, a.param, a.values[i]) for a, i in zip(axes, coords, strict=True)]
            set_here = {(n, p): v for n, p, v in values}
            for node_id, widget, mode_name in seeds:
                if repeat == 0 or mode_name == "fixed":
                    continue
                base = set_here.get((node_id, widget.name))
                if base is None:
                    base = graph.node(node_id).params.get(widget.name, widget.default)
                low = int(widget.min) if widget.min is not None else 0
                high = int(widget.max) if widget.max is not None else _SEED_MAX
                if mode_name == "increment":
                    value = low + (int(base) - low + repeat) % (high - low + 1)
                else:
                    value = rng.randint(low, high)
                if (node_id, widget.name) in set_here:
                    values = [
                        (n, p, value if (n, p) == (node_id, widget.name) else v)
                        for n, p, v in values
                    ]
                else:
                    values.append((node_id, widget.name, value))
            runs.append(SweepRun(len(runs), coords, repeat, tuple(values)))
    return runs


def _seed_widgets(graph: Graph) -> list[tuple[NodeId, Any, str]]:
    """Unlinked seed widgets with their after-run mode, in node order."""
    out = []
    for node in graph:
        for widget in graph.spec(node.id).widgets:
            if not widget.control_after_run or graph.link_to(node.id, widget.name):
                continue
            modes = node.ui.get("control_after_run", {})
            mode = modes.get(widget.name, "fixed") if isinstance(modes, dict) else "fixed"
            out.append((node.id, widget, mode if mode in SEED_MODES else "fixed"))
    return out


def apply_run(graph: Graph, run: SweepRun) -> None:
    """Sets ``run``'s params on ``graph`` (a copy of the sweep's workflow)."""
    for node_id, param, value in run.values:
        graph.set_param(node_id, param, value)


def run_graph(workflow: Mapping[str, Any], run: SweepRun, registry: NodeRegistry) -> Graph:
    """A fresh graph of ``workflow`` with ``run``'s params set."""
    graph = from_dict(dict(workflow), registry).graph
    apply_run(graph, run)
    return graph


# --- ordering and assignment --------------------------------------------------------------


def order_by_shared_keys(keys: Mapping[int, Sequence[str | None]]) -> list[int]:
    """Run indexes ordered so that runs sharing upstream results are adjacent.

    ``keys[i]`` are run i's cache keys in topological order (the same nodes for every run).
    Each key is ranked by the first run (in index order) that has it, and runs are sorted by
    their ranks upstream first: runs with one checkpoint form a block, inside it runs with one
    prompt, and so on; where nothing is shared the grid order is kept.
    """
    ranks: list[dict[str | None, int]] = []
    width = max((len(k) for k in keys.values()), default=0)
    for position in range(width):
        seen: dict[str | None, int] = {}
        for index in sorted(keys):
            key = keys[index][position] if position < len(keys[index]) else None
            seen.setdefault(key, len(seen))
        ranks.append(seen)

    def sort_key(index: int) -> tuple[int, ...]:
        row = keys[index]
        return (*(ranks[p][row[p] if p < len(row) else None] for p in range(width)), index)

    return sorted(keys, key=sort_key)


def shared_prefix(a: Sequence[str | None], b: Sequence[str | None]) -> int:
    """How many leading keys two runs share (None never counts as shared)."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x is None or x != y:
            break
        count += 1
    return count


def assign_to_workers(
    order: Sequence[int],
    keys: Mapping[int, Sequence[str | None]],
    workers: int,
    slack: float = 0.25,
) -> list[list[int]]:
    """Splits ``order`` (from ``order_by_shared_keys``) into ``workers`` contiguous shares.

    Each cut is placed within ``slack`` × a share's size of the even split, where the runs on
    either side share the fewest leading keys (ties: nearest the even split), so a prompt's or
    a checkpoint's runs stay on one worker when that costs little balance.
    """
    if workers < 1:
        raise SweepError(f"{workers} workers: give 1 or more")
    count = len(order)
    size = count / workers
    window = max(0, int(size * slack))
    cuts = [0]
    for k in range(1, workers):
        ideal = round(k * size)
        low = max(cuts[-1], ideal - window)
        high = min(count, ideal + window)
        best = ideal if low <= ideal <= high else low
        best_score = (math.inf, 0)
        for cut in range(low, high + 1):
            if cut <= 0 or cut >= count:
                score: tuple[float, int] = (math.inf, abs(cut - ideal))
            else:
                score = (shared_prefix(keys[order[cut - 1]], keys[order[cut]]), abs(cut - ideal))
            if score < best_score:
                best, best_score = cut, score
        cuts.append(max(cuts[-1], best))
    cuts.append(count)
    return [list(order[cuts[i] : cuts[i + 1]]) for i in range(workers)]


# --- the plan -----------------------------------------------------------------------------


def make_sweep(
    graph: Graph,
    axes: Sequence[Axis],
    mode: str = PRODUCT,
    batch_count: int = 1,
    view: Mapping[str, Any] | None = None,
    outputs: Iterable[NodeId] | None = None,
    seed: int | None = None,
) -> SweepPlan:
    """Plans the sweep: every run validated, keyed and put in cache-friendly order.

    Raises ``SweepError`` when an axis or the batch count is wrong, and when a run would not
    validate (the message names the run and its first problems). ``seed`` drives *randomize*
    seeds in repeats (default: derived from the workflow, so a plan is reproducible).
    """
    workflow = to_dict(graph, view)
    if seed is None:
        text = json.dumps(workflow, sort_keys=True, default=str)
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)
    runs = expand_runs(graph, axes, mode, batch_count, seed)
    outputs = None if outputs is None else tuple(outputs)
    work = from_dict(workflow, graph.registry).graph
    plan = make_plan(work, outputs, graph.registry)
    originals = {
        (n, p): work.node(n).params.get(p, work.spec(n).input(p).default)
        for run in runs
        for n, p, _ in run.values
    }
    keys: dict[int, tuple[str | None, ...]] = {}
    problems: list[tuple[SweepRun, list[Problem]]] = []
    checked: set[tuple[Any, ...]] = set()
    for run in runs:
        for (node_id, param), value in originals.items():
            work.set_param(node_id, param, value)
        apply_run(work, run)
        signature = tuple((n, p, repr(v)) for n, p, v in run.values)
        if signature not in checked:
            checked.add(signature)
            found = validate_plan(work, plan)
            if found:
                problems.append((run, found))
        run_keys, _ = compute_keys(work, plan)
        keys[run.index] = tuple(run_keys[nid] for nid in plan.order)
    if problems:
        run, found = problems[0]
        more = f" ({len(problems) - 1} more run(s) have problems)" if len(problems) > 1 else ""
        shown = "; ".join(p.message for p in found[:3])
        raise SweepError(f"run {run.label(axes)} is not valid: {shown}{more}")
    order = order_by_shared_keys(keys)
    by_index = {run.index: run for run in runs}
    distinct = {k for row in keys.values() for k in row if k is not None}
    unkeyed = sum(1 for row in keys.values() for k in row if k is None)
    stats = SweepStats(len(runs), len(plan.order), len(distinct) + unkeyed)
    return SweepPlan(
        workflow=workflow,
        axes=tuple(axes),
        mode=mode,
        batch_count=batch_count,
        runs=tuple(by_index[i] for i in order),
        keys=keys,
        node_order=plan.order,
        stats=stats,
        uses_models=uses_models(plan),
        outputs=outputs,
    )


def uses_models(plan: Plan) -> bool:
    """Whether a planned node produces or consumes a model (then a GPU helps)."""
    for node in plan.nodes.values():
        if any(o.type in MODEL_TYPES for o in node.spec.outputs):
            return True
    return False
