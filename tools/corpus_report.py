"""How much of the public ComfyUI workflow corpus LatentLoom opens fully, and what the rest lacks.

    python tools/corpus_report.py            the table, the missing node types, the categories
    python tools/corpus_report.py --failing  only the files that do not open fully
    python tools/corpus_report.py --json     the same as data

The corpus is ``tests/interop/corpus`` (see its ``manifest.json``): workflow files of the
SD 1.x / 2.x / SDXL era gathered from public repositories. Each file is opened with
``nodes.interop.open_workflow`` and validated with ``core.engine.validate``, as
``main.py validate`` does, against an empty model folder. A file *opens fully* when it opens,
every node in it maps to a LatentLoom node (no placeholders), and validation finds nothing but
model and picture files that are naturally absent here (a checkpoint, VAE, LoRA, embedding or
input picture the workflow names). ``tests/interop/test_corpus.py`` holds the share that opens
fully to a floor.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "interop" / "corpus"
MANIFEST = CORPUS / "manifest.json"

#: Node fields whose value names a file kept in a model folder or ComfyUI's input folder: a
#: problem on one of them means the file is absent here, which is expected of a corpus.
FILE_FIELDS = frozenset(
    {
        "ckpt_name",
        "vae_name",
        "lora_name",
        "unet_name",
        "clip_name",
        "clip_name1",
        "clip_name2",
        "control_net_name",
        "model_name",
        "upscale_model_name",
        "style_model_name",
        "ipadapter_file",
        "gligen_name",
        "hypernetwork_name",
        "config_name",
        "embedding",
        "embedding_name",
        "image",
        "mask",
    }
)
#: Problem codes a missing file is reported with (``check_failed`` by the loaders' checks
#: today; the others are accepted should a dedicated code appear).
FILE_CODES = frozenset({"check_failed", "missing_file", "missing_model"})
#: A missing textual-inversion embedding named in a prompt (``embedding:name``) is reported
#: on the prompt's field; it is recognised by its message.
_MISSING_EMBEDDING = re.compile(
    r"\bembeddings?\b.*\b(not found|does not exist|no such|is missing|missing)\b"
    r"|\bno embeddings? (file |model )?named\b",
    re.IGNORECASE | re.DOTALL,
)
#: Import warnings that only say an input picture is absent here (also reported by validation).
_ABSENT_PICTURE = re.compile(r"image '.*' is in ComfyUI's input folder")
_UNKNOWN_TYPE = re.compile(r"unknown node type")
#: The node a validation message starts with ("KSampler #3: "), dropped to group messages.
_NODE_LABEL = re.compile(r": .*? #\d+: ")


@dataclass(frozen=True)
class Entry:
    """One corpus file as the manifest describes it."""

    file: str
    repository: str
    path: str
    commit: str
    licence: str
    format: str
    category: str
    tags: tuple[str, ...] = ()

    @property
    def location(self) -> Path:
        return CORPUS / self.file


@dataclass(frozen=True)
class Assessment:
    """What opening and validating one corpus file found."""

    entry: Entry
    #: Node types that became placeholders, each once, sorted.
    unknown_types: tuple[str, ...] = ()
    #: Validation problems other than absent files, as ``code field: message``.
    problems: tuple[str, ...] = ()
    #: Import warnings other than unknown node types and absent input pictures.
    warnings: tuple[str, ...] = ()
    #: Validation problems that only name a model or picture absent here.
    absent_files: int = 0
    #: Why the file could not be opened at all, if it could not.
    error: str | None = None
    nodes: int = field(default=0, compare=False)

    @property
    def opens_fully(self) -> bool:
        return self.error is None and not self.unknown_types and not self.problems

    def lacks(self, width: int | None = None) -> list[str]:
        """One line per thing this file lacks (empty when it opens fully), warnings last; the
        same problem on several nodes is one line. ``width`` shortens long lines."""
        lines = []
        if self.error is not None:
            lines.append(f"cannot open: {self.error}")
        if self.unknown_types:
            lines.append("unknown node types: " + ", ".join(self.unknown_types))
        problems = Counter(_NODE_LABEL.sub(": ", text, count=1) for text in self.problems)
        lines.extend(
            f"problem: {text}" + (f" (on {count} nodes)" if count > 1 else "")
            for text, count in problems.items()
        )
        lines.extend(f"import warning: {text}" for text in self.warnings)
        if width is not None:
            lines = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
        return lines


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Entry(
            file=item["file"],
            repository=item["repository"],
            path=item["path"],
            commit=item["commit"],
            licence=item["licence"],
            format=item["format"],
            category=item["category"],
            tags=tuple(item.get("tags", ())),
        )
        for item in data["files"]
    ]


def is_absent_file(problem: Any) -> bool:
    """Whether a validation problem only says a named model or picture file is not here."""
    if problem.code not in FILE_CODES:
        return False
    if problem.field in FILE_FIELDS:
        return True
    return bool(_MISSING_EMBEDDING.search(problem.message))


def make_registry(model_root: Path) -> Any:
    """The node registry, its loaders looking only in ``model_root`` (keep it empty)."""
    from core.diffusion.model_paths import ModelPaths
    from nodes import build_registry

    return build_registry(ModelPaths.of(model_root))


def assess(entry: Entry, registry: Any) -> Assessment:
    """Opens and validates one corpus file; never runs anything."""
    from core.engine import validate
    from core.graph.workflow import WorkflowError
    from nodes.interop import open_workflow

    try:
        result = open_workflow(entry.location, registry)
    except WorkflowError as exc:
        return Assessment(entry, error=str(exc))
    graph = result.workflow.graph
    unknown = tuple(sorted({node.type_id for node in result.report.unknown}))
    problems, absent = [], 0
    for problem in validate(graph):
        if problem.code == "unknown_type":
            continue  # the placeholder is listed among the unknown types already
        if is_absent_file(problem):
            absent += 1
        else:
            where = f" {problem.field}" if problem.field else ""
            problems.append(f"{problem.code}{where}: {problem.message}")
    warnings = tuple(
        text
        for text in result.report.warnings
        if not _UNKNOWN_TYPE.search(text) and not _ABSENT_PICTURE.search(text)
    )
    return Assessment(
        entry,
        unknown_types=unknown,
        problems=tuple(problems),
        warnings=warnings,
        absent_files=absent,
        nodes=len(graph),
    )


def assess_all(entries: Iterable[Entry] | None = None) -> list[Assessment]:
    """Every corpus file assessed against an empty model folder."""
    entries = load_manifest() if entries is None else list(entries)
    with tempfile.TemporaryDirectory(prefix="latentloom-corpus-") as empty:
        registry = make_registry(Path(empty))
        return [assess(entry, registry) for entry in entries]


def share_opening_fully(assessments: Sequence[Assessment]) -> float:
    if not assessments:
        return 0.0
    return sum(a.opens_fully for a in assessments) / len(assessments)


def missing_types(assessments: Iterable[Assessment]) -> list[tuple[str, int]]:
    """Each unknown node type with how many files lack it, most files first."""
    counts = Counter(t for a in assessments for t in a.unknown_types)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def problem_kinds(assessments: Iterable[Assessment]) -> list[tuple[str, int]]:
    """Each kind of remaining problem (code, field and the value at fault when quoted) with
    how many files have it, most files first."""
    counts: Counter[str] = Counter()
    for a in assessments:
        kinds = set()
        for text in a.problems:
            head, _, message = text.partition(": ")
            quoted = re.search(r"'[^']*' is invalid: ('[^']*')|unknown \w+ ('[^']*')", message)
            value = next((g for g in quoted.groups() if g), "") if quoted else ""
            kinds.add(f"{head} {value}".strip())
        counts.update(kinds)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def by_key(assessments: Iterable[Assessment], key: str) -> list[tuple[str, int, int]]:
    """``(value, opening fully, files)`` per category, format or repository."""
    full: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for a in assessments:
        value = getattr(a.entry, key)
        total[value] += 1
        full[value] += a.opens_fully
    return [(value, full[value], total[value]) for value in sorted(total)]


def format_report(assessments: Sequence[Assessment], failing_only: bool = False) -> str:
    full = sum(a.opens_fully for a in assessments)
    lines = [
        f"{full} of {len(assessments)} corpus files open fully "
        f"({share_opening_fully(assessments):.1%}); absent model and picture files aside.",
        "",
        "Per file:",
    ]
    for a in assessments:
        if failing_only and a.opens_fully:
            continue
        mark = "FULL" if a.opens_fully else "LACKS"
        absent = f", {a.absent_files} absent file(s)" if a.absent_files else ""
        lines.append(f"  {mark:5}  {a.entry.file}  [{a.entry.format}, {a.entry.category}{absent}]")
        lines.extend(f"           {text}" for text in a.lacks(width=150))
    lines += ["", "Missing node types (files lacking each, most first):"]
    lines += [f"  {count:4}  {type_id}" for type_id, count in missing_types(assessments)]
    lines += ["", "Other problems (files with each, most first):"]
    lines += [f"  {count:4}  {kind}" for kind, count in problem_kinds(assessments)]
    for key, title in (("category", "category"), ("format", "format"), ("repository", "source")):
        lines += ["", f"By {title} (open fully / files):"]
        lines += [f"  {full:4} / {n:<4} {value}" for value, full, n in by_key(assessments, key)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failing", action="store_true", help="list only files that lack")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    assessments = assess_all()
    if args.json:
        rows = [
            {**asdict(a), "opens_fully": a.opens_fully, "entry": asdict(a.entry)}
            for a in assessments
            if a.opens_fully is False or not args.failing
        ]
        summary = {
            "share_opening_fully": share_opening_fully(assessments),
            "missing_types": missing_types(assessments),
            "files": rows,
        }
        print(json.dumps(summary, indent=1))
    else:
        print(format_report(assessments, failing_only=args.failing))
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
