"""Errors raised while finding, reading and building models."""

from __future__ import annotations

from pathlib import Path


class ModelLoadError(Exception):
    """A model file or folder could not be turned into a working model.

    The message always names the file, says what was expected instead and what the user can
    do about it, because it ends up verbatim on a node in the editor.
    """

    def __init__(self, path: str | Path | None, problem: str, remedy: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.remedy = remedy
        where = f"{self.path}: " if self.path is not None else ""
        message = f"{where}{problem}"
        if remedy:
            message += f" {remedy}"
        super().__init__(message)


class ModelNotFoundError(ModelLoadError):
    """A model name did not resolve to a file in any of the configured model folders."""
