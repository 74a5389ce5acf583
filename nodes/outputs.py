"""Output files for the nodes that write them: names checked before the run, refusals pinned
to the param that named the file. Paths are resolved and allocated by ``core.files`` alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.files import Contents
from core.graph.spec import CheckFn


def write_output(
    ctx: Any, field: str, name: str, suffix: str, data: Contents, *, plain_first: bool = False
) -> Path:
    """Writes a new output file named by the param ``field``; a refusal is a node error on it.

    ``data`` is the file's bytes or a function writing them into the open file (see
    ``core.files.write_new_output``).

    The name may have arrived through a link, so validation may not have seen it.
    """
    from core.engine import NodeError
    from core.files import OutputPathError, OutputWriteError, write_new_output

    try:
        return write_new_output(ctx.output_dir, name, suffix, data, plain_first=plain_first)
    except OutputPathError as exc:
        raise NodeError(f"'{field}': {exc}", field=field) from None
    except OutputWriteError as exc:
        raise NodeError(str(exc)) from None


def output_name_problems(field: str) -> CheckFn:
    """A ``check`` hook refusing an output name in the widget ``field`` before the run."""

    def problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
        from core.files import check_output_name

        if field not in params:
            return  # the name arrives by a link: ``write_output`` checks it at run time
        reason = check_output_name(params[field])
        if reason is not None:
            yield field, reason

    return problems
