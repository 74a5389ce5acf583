"""``main.py nodes`` and ``main.py packs``: what the node catalogue and the installed node packs
hold, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes.cli import common
from nodes.cli.common import EXIT_NODE_FAILED, EXIT_OK


def describe_nodes(as_json: bool, model_roots: Sequence[Path] = ()) -> int:
    from core.graph.spec import WidgetInput

    registry = common.registry(model_roots)
    entries = []
    for spec in sorted(registry, key=lambda s: (s.category, s.type_id)):
        inputs = []
        for inp in spec.inputs:
            item: dict[str, Any] = {"name": inp.name, "type": inp.type}
            if isinstance(inp, WidgetInput):
                item |= {"widget": True, "default": inp.default}
                for key in ("min", "max", "step", "choices_from"):
                    if getattr(inp, key) is not None:
                        item[key] = getattr(inp, key)
                choices = registry.choices(inp)
                if choices is not None:
                    item["choices"] = list(choices)
            else:
                item["optional"] = inp.optional
            inputs.append(item)
        entries.append(
            {
                "type": spec.type_id,
                "title": spec.title,
                "category": spec.category,
                "version": spec.version,
                "output_node": spec.output_node,
                "description": spec.description,
                "inputs": inputs,
                "outputs": [{"name": o.name, "type": o.type} for o in spec.outputs],
            }
        )
        if spec.pack is not None:
            entries[-1]["pack"] = spec.pack
    if as_json:
        print(json.dumps(entries, indent=1))
        return EXIT_OK
    for entry in entries:
        pack = f"  (node pack {entry['pack']})" if "pack" in entry else ""
        print(f"{entry['type']}  [{entry['category']}]  {entry['title']}{pack}")
        for item in entry["inputs"]:
            extra = f" = {item['default']!r}" if item.get("widget") else ""
            print(f"    in   {item['name']}: {item['type']}{extra}")
        for item in entry["outputs"]:
            print(f"    out  {item['name']}: {item['type']}")
    return EXIT_OK


def describe_packs(as_json: bool) -> int:
    """Lists the installed node packs; exit 1 when one failed to load."""
    from nodes.packs import describe

    reports = common.registry(announce=False).packs
    if as_json:
        rows = [{**vars(r), "status": r.status.value} for r in reports]
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join(describe(reports)))
    return EXIT_NODE_FAILED if any(r.status == "failed" for r in reports) else EXIT_OK
