"""Main windows for tests, each with its own settings, recovery and output folders under the
test's ``tmp_path``, shut down without leaving recovery files behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nodeui.documents import RecoveryStore
from nodeui.settings import open_settings
from nodeui.window import MainWindow


def new_window(
    tmp_path: Path,
    registry: Any = None,
    *,
    settings: str = "settings.ini",
    recovery: str = "data",
    **options: Any,
) -> MainWindow:
    """A window (not shown) over ``registry`` (None: the real node catalogue)."""
    if registry is not None:
        options["registry"] = registry
    return MainWindow(
        open_settings(tmp_path / settings),
        recovery=RecoveryStore(tmp_path / recovery),
        output_dir=tmp_path / "out",
        **options,
    )


def close_window(window: MainWindow) -> None:
    """Shuts the window down as a test ends: no recovery file kept, the widget deleted."""
    window.shutdown(persist=False)
    window.close()
    window.deleteLater()


@contextmanager
def open_window(tmp_path: Path, registry: Any = None, **options: Any) -> Iterator[MainWindow]:
    """``new_window``, closed with ``close_window`` when the block ends."""
    window = new_window(tmp_path, registry, **options)
    try:
        yield window
    finally:
        close_window(window)


@contextmanager
def window_maker(tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:
    """A ``new_window`` for tests that open several; all are closed when the block ends."""
    made: list[MainWindow] = []

    def make(registry: Any = None, **options: Any) -> MainWindow:
        window = new_window(tmp_path, registry, **options)
        made.append(window)
        return window

    try:
        yield make
    finally:
        for window in made:
            close_window(window)
