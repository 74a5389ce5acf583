"""A sweep's results on disk: each run's pictures, the X/Y grids and the ``sweep.json`` index.

Files go through ``core.files`` only (inside the output folder, exclusive create, atomic).
Run files keep the name the run gave them behind a ``runNNNN_`` prefix, so a folder sorts by
run. Each grid picture carries its cell map in a PNG text chunk (``GRID_KEY``): the run and
the file of every cell, so a click on a cell can open that run's picture, and through its
embedded workflow, its graph. Both the CLI and the editor write sweeps through ``SweepWriter``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.engine.sweep import SweepPlan
from core.engine.sweep_runs import RunOutput
from core.files import write_new_output

#: The PNG text chunk of a grid picture holding its cell map (JSON).
GRID_KEY = "latentloom-grid"
INDEX_FORMAT = "latentloom-sweep"
INDEX_VERSION = 1


@dataclass
class GridPage:
    """One written grid picture and where its cells are."""

    path: Path
    page: int
    label: str
    #: (run index, column, row, (x, y, w, h), picture file or None)
    cells: list[tuple[int, int, int, tuple[int, int, int, int], str | None]]


@dataclass
class SweepResult:
    """What a finished (or stopped) sweep wrote."""

    folder: Path
    index: Path | None = None
    grids: list[GridPage] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    ran: int = 0
    cached: int = 0
    failed: list[RunOutput] = field(default_factory=list)


class SweepWriter:
    """Publishes run outputs as they arrive (in any order), then the grids and the index."""

    def __init__(self, folder: Path | str, plan: SweepPlan) -> None:
        self.folder = Path(folder)
        self.plan = plan
        self.outputs: dict[int, RunOutput] = {}
        self.published: dict[int, list[Path]] = {}
        self.result = SweepResult(self.folder)

    def add(self, output: RunOutput) -> list[Path]:
        """Writes ``output``'s files into the folder; returns their paths."""
        written = []
        for name, data in output.files:
            path = PurePosixPath(name)
            stem = f"run{output.index:04d}_{path.stem}"
            target = str(path.with_name(stem)) if path.parent != PurePosixPath(".") else stem
            path_out = write_new_output(self.folder, target, path.suffix, data, plain_first=True)
            written.append(path_out)
        self.outputs[output.index] = output
        self.published[output.index] = written
        self.result.files.extend(written)
        self.result.ran += output.ran
        self.result.cached += output.cached
        if output.status != "ok":
            self.result.failed.append(output)
        return written

    def picture_of(self, index: int) -> Path | None:
        """The first PNG run ``index`` wrote (what its grid cell shows)."""
        for path in self.published.get(index, ()):
            if path.suffix.lower() == ".png":
                return path
        return None

    def finish(self) -> SweepResult:
        """Writes one grid per page (when some run made a picture) and ``sweep.json``;
        returns everything written."""
        if self.plan.axes and any(self.picture_of(i) for i in self.published):
            self._write_grids()
        self.result.index = write_new_output(
            self.folder, "sweep", ".json", self._index_bytes(), plain_first=True
        )
        return self.result

    def _write_grids(self) -> None:
        from PIL import Image

        from core.diffusion.grids import compose_grid

        plan = self.plan
        columns, rows, pages = plan.grid_shape()
        by_page: dict[int, dict[tuple[int, int], int]] = {}
        for run in plan.runs:
            column, row, page = plan.cell_of(run)
            by_page.setdefault(page, {})[(column, row)] = run.index
        x_axis = plan.axes[0]
        zipped = plan.mode == "zip"
        if zipped:
            labels = [", ".join(a.label(i) for a in plan.axes) for i in range(len(x_axis.values))]
            x_title = " / ".join(a.title or a.name for a in plan.axes)
        else:
            labels = [x_axis.label(i) for i in range(columns)]
            x_title = x_axis.title or x_axis.name
        y_axis = plan.axes[1] if len(plan.axes) > 1 and not zipped else None
        row_labels = [y_axis.label(i) for i in range(rows)] if y_axis else [""]
        for page in range(pages):
            cells = by_page.get(page, {})
            pictures = {}
            for position, index in cells.items():
                path = self.picture_of(index)
                pictures[position] = None if path is None else Image.open(path)
            label = self._page_label(page, cells)
            grid = compose_grid(
                pictures,
                labels,
                row_labels,
                x_title,
                (y_axis.title or y_axis.name) if y_axis else "",
                label,
            )
            cell_map = []
            for cell in grid.cells:
                index = cells.get((cell.column, cell.row))
                if index is None:
                    continue
                picture = self.picture_of(index)
                name = None if picture is None else picture.name
                cell_map.append((index, cell.column, cell.row, cell.box, name))
            text = json.dumps(
                {
                    "sweep": True,
                    "cells": [
                        {"run": i, "column": c, "row": r, "box": list(b), "file": f}
                        for i, c, r, b, f in cell_map
                    ],
                }
            )
            data = _png_with_text(grid.image, GRID_KEY, text)
            name = "grid" if pages == 1 else f"grid_page{page + 1:02d}"
            path = write_new_output(self.folder, name, ".png", data, plain_first=True)
            self.result.grids.append(GridPage(path, page, label, cell_map))

    def _page_label(self, page: int, cells: dict[tuple[int, int], int]) -> str:
        """What a page shows beyond X and Y: the Z (and further) values and the repeat."""
        plan = self.plan
        if not cells:
            return ""
        run = plan.run(next(iter(cells.values())))
        parts = []
        if plan.mode != "zip":
            for axis, coord in zip(plan.axes[2:], run.coords[2:], strict=True):
                parts.append(f"{axis.title or axis.name}: {axis.label(coord)}")
        if plan.batch_count > 1:
            parts.append(f"batch {run.repeat + 1} of {plan.batch_count}")
        return ", ".join(parts)

    def _index_bytes(self) -> bytes:
        plan = self.plan
        runs = []
        for run in sorted(plan.runs, key=lambda r: r.index):
            output = self.outputs.get(run.index)
            entry = run.to_dict() | {"label": run.label(plan.axes)}
            if output is None:
                entry["status"] = "not run"
            else:
                entry |= {
                    "status": output.status,
                    "message": output.message,
                    "files": [p.name for p in self.published.get(run.index, ())],
                    "worker": output.worker,
                    "seconds": round(output.seconds, 4),
                    "ran": output.ran,
                    "cached": output.cached,
                }
            runs.append(entry)
        data = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            **plan.describe(),
            "runs": runs,
            "executed": {"ran": self.result.ran, "cached": self.result.cached},
            "grids": [
                {
                    "file": grid.path.name,
                    "page": grid.page,
                    "label": grid.label,
                    "cells": [
                        {"run": i, "column": c, "row": r, "box": list(b), "file": f}
                        for i, c, r, b, f in grid.cells
                    ],
                }
                for grid in self.result.grids
            ],
            "workflow": plan.workflow,
        }
        return (json.dumps(data, indent=1, default=str) + "\n").encode("utf-8")


def _png_with_text(image: Any, key: str, text: str) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt(key, text, zip=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def read_grid_cells(path: Path | str) -> list[dict[str, Any]]:
    """The cell map a grid picture carries (empty when it is not a sweep grid)."""
    from core.graph.png import PngError, read_text_chunks

    try:
        chunks = read_text_chunks(Path(path).read_bytes())
        cells = json.loads(chunks.get(GRID_KEY, "{}")).get("cells", [])
    except (OSError, PngError, ValueError, AttributeError):
        return []
    return [c for c in cells if isinstance(c, dict)]
