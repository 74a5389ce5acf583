"""Editor settings: what they are (``EditorSettings``), where they live (``QSettings``), the
dialog that edits them, and the recent-files list.

Tests and scripted runs point everything at a temporary place: pass an ini path to
``open_settings`` or set ``$LATENTLOOM_SETTINGS``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.engine import CacheBudgets
from core.graph.packs import PackReport
from nodeui.packs_page import PackList

ORGANIZATION = "LatentLoom"
APPLICATION = "LatentLoom"
#: An ini file to use instead of the per-user settings (scripted runs, tests).
SETTINGS_ENVIRONMENT = "LATENTLOOM_SETTINGS"

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: "latent": a fast latent→RGB picture on the sampler each step; "vae": the full VAE's picture
#: every ``preview_vae_every`` steps (slower, exact); "off": progress only.
PREVIEW_MODES = ("latent", "vae", "off")
GIB = 1024**3
MAX_RECENT = 10
#: Item data of the model folder list: the user's folder, or a default root's path.
_FOLDER_ROLE = Qt.ItemDataRole.UserRole
_DEFAULT_ROLE = Qt.ItemDataRole.UserRole + 1


def open_settings(path: str | os.PathLike[str] | None = None) -> QSettings:
    """The settings store: ``path`` (an ini file), else ``$LATENTLOOM_SETTINGS``, else the
    per-user location of this platform."""
    chosen = path or os.environ.get(SETTINGS_ENVIRONMENT)
    if chosen:
        return QSettings(str(chosen), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


@dataclass(frozen=True)
class EditorSettings:
    """What the Settings dialog edits. Model folders are searched before the default roots."""

    model_folders: tuple[str, ...] = ()
    device: str = "auto"
    dtype: str = "auto"
    tensor_cache_gib: float = 4.0
    model_cache_gib: float = 8.0
    preview_mode: str = "latent"
    preview_vae_every: int = 5
    #: Node packs (distribution names) not to load; their code is never run.
    disabled_packs: tuple[str, ...] = ()
    #: The Ray cluster the Sweep panel's "Run on cluster" uses ("auto": the running one).
    ray_address: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def cache_budgets(self) -> CacheBudgets:
        return CacheBudgets(
            tensor_bytes=int(self.tensor_cache_gib * GIB),
            model_bytes=int(self.model_cache_gib * GIB),
        )

    @classmethod
    def load(cls, store: QSettings) -> EditorSettings:
        defaults = cls()
        return cls(
            model_folders=_strings(store.value("models/folders", [])),
            device=_choice(store.value("run/device"), DEVICES, defaults.device),
            dtype=_choice(store.value("run/dtype"), DTYPES, defaults.dtype),
            tensor_cache_gib=_number(store.value("cache/tensor_gib"), defaults.tensor_cache_gib),
            model_cache_gib=_number(store.value("cache/model_gib"), defaults.model_cache_gib),
            preview_mode=_choice(store.value("run/preview"), PREVIEW_MODES, defaults.preview_mode),
            preview_vae_every=int(
                _number(store.value("run/preview_vae_every"), defaults.preview_vae_every)
            ),
            disabled_packs=_strings(store.value("packs/disabled", [])),
            ray_address=str(store.value("sweep/ray_address", "") or ""),
        )

    def save(self, store: QSettings) -> None:
        store.setValue("models/folders", list(self.model_folders))
        store.setValue("run/device", self.device)
        store.setValue("run/dtype", self.dtype)
        store.setValue("cache/tensor_gib", self.tensor_cache_gib)
        store.setValue("cache/model_gib", self.model_cache_gib)
        store.setValue("run/preview", self.preview_mode)
        store.setValue("run/preview_vae_every", self.preview_vae_every)
        store.setValue("packs/disabled", list(self.disabled_packs))
        store.setValue("sweep/ray_address", self.ray_address)
        store.sync()


def _strings(value: object) -> tuple[str, ...]:
    """A stored list of strings; QSettings gives a lone string for a one-item list."""
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(v) for v in value or ()) if isinstance(value, (list, tuple)) else ()


def _choice(value: object, choices: tuple[str, ...], default: str) -> str:
    return str(value) if value in choices else default


def _number(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


class RecentFiles:
    """The Open Recent list, newest first, kept in the settings store."""

    KEY = "files/recent"

    def __init__(self, store: QSettings) -> None:
        self._store = store

    def paths(self) -> list[Path]:
        raw = self._store.value(self.KEY, [])
        if isinstance(raw, str):
            raw = [raw] if raw else []
        return [Path(p) for p in raw or ()]

    def add(self, path: Path) -> None:
        path = Path(path).resolve()
        entries = [path, *(p for p in self.paths() if p != path)][:MAX_RECENT]
        self._store.setValue(self.KEY, [str(p) for p in entries])
        self._store.sync()

    def clear(self) -> None:
        self._store.setValue(self.KEY, [])
        self._store.sync()


class SettingsDialog(QDialog):
    """Edits ``EditorSettings``; ``result_settings()`` gives what the user chose."""

    settingsChanged = Signal(object)

    def __init__(
        self,
        settings: EditorSettings,
        parent: QWidget | None = None,
        packs: Sequence[PackReport] = (),
        locked_packs: Sequence[str] = (),
        default_folders: Sequence[tuple[str | Path, str]] | None = None,
    ) -> None:
        """``packs``: the installed node packs to list; ``locked_packs``: those disabled from
        outside the editor, which the page shows but cannot switch on; ``default_folders``:
        the model roots searched after the user's, each with where it comes from (default:
        ``nodes.builtin_model_roots()``)."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._initial = settings
        self.folders = QListWidget()
        self.folders.setToolTip(
            "Searched in this order for checkpoints, VAEs, LoRAs…: your folders first, then "
            "the default ones, which you cannot remove here"
        )
        for folder in settings.model_folders:
            self._add_folder_item(folder)
        if default_folders is None:
            import nodes

            default_folders = nodes.builtin_model_roots()
        for folder, why in default_folders:
            self._add_default_item(Path(folder), why)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        self.remove_folder_button = remove
        add.clicked.connect(self._add_folder)
        remove.clicked.connect(self._remove_folder)
        self.folders.currentRowChanged.connect(lambda _: self._update_remove())
        self._update_remove()
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(add)
        buttons_row.addWidget(remove)
        buttons_row.addStretch(1)
        folder_box = QVBoxLayout()
        folder_box.addWidget(self.folders)
        folder_box.addLayout(buttons_row)

        self.device = _combo(DEVICES, settings.device)
        self.dtype = _combo(DTYPES, settings.dtype)
        self.preview = _combo(PREVIEW_MODES, settings.preview_mode)
        self.preview_every = QSpinBox()
        self.preview_every.setRange(1, 1000)
        self.preview_every.setPrefix("every ")
        self.preview_every.setSuffix(" steps")
        self.preview_every.setValue(settings.preview_vae_every)
        self.preview_every.setToolTip(
            'With the "vae" preview: how often the sampler decodes its estimate with the full '
            "VAE (each decode costs about as much as a VAE Decode node)"
        )
        self.preview_every.setEnabled(settings.preview_mode == "vae")
        self.preview.currentTextChanged.connect(
            lambda mode: self.preview_every.setEnabled(mode == "vae")
        )
        self.ray_address = QLineEdit(settings.ray_address)
        self.ray_address.setPlaceholderText("auto, local, or ray://host:10001")
        self.ray_address.setToolTip(
            "Where the Sweep panel's Run on cluster sends its runs: auto joins the Ray cluster "
            "this machine belongs to, local starts one here; needs latentloom[cluster]"
        )
        self.tensor_cache = _gib_box(settings.tensor_cache_gib)
        self.model_cache = _gib_box(settings.model_cache_gib)

        form = QFormLayout()
        form.addRow("Model folders", folder_box)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        form.addRow("Result cache", self.tensor_cache)
        form.addRow("Model cache", self.model_cache)
        form.addRow("Sampler preview", self.preview)
        form.addRow("VAE preview", self.preview_every)
        form.addRow("Ray cluster", self.ray_address)
        box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        general = QWidget()
        general.setLayout(form)
        self.packs = PackList(packs, settings.disabled_packs, locked_packs)
        self.tabs = QTabWidget()
        self.tabs.addTab(general, "General")
        self.tabs.addTab(self.packs, "Node packs")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(box)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder")
        if folder:
            self._add_folder_item(folder)

    def _add_folder_item(self, folder: str) -> None:
        """A folder of the user's, after the others of theirs and before the defaults."""
        found = Path(folder).expanduser().is_dir()
        item = QListWidgetItem(folder if found else f"{folder}  (not found)")
        item.setData(_FOLDER_ROLE, folder)
        item.setToolTip(folder if found else f"{folder} does not exist: nothing is found there")
        self.folders.insertItem(len(self.user_folders()), item)
        self.folders.setCurrentItem(item)

    def _add_default_item(self, folder: Path, why: str) -> None:
        found = folder.is_dir()
        state = "found" if found else "not found"
        item = QListWidgetItem(f"{folder}  (default: {why}; {state})")
        item.setData(_DEFAULT_ROLE, str(folder))
        item.setForeground(self.palette().color(self.palette().ColorRole.PlaceholderText))
        item.setToolTip(
            f"Searched by default ({why}), after your folders; "
            + ("it exists." if found else "it does not exist, so nothing is found there.")
        )
        self.folders.addItem(item)

    def user_folders(self) -> tuple[str, ...]:
        """The user's model folders, in search order."""
        items = (self.folders.item(i) for i in range(self.folders.count()))
        return tuple(
            item.data(_FOLDER_ROLE) for item in items if item.data(_FOLDER_ROLE) is not None
        )

    def default_folders(self) -> list[str]:
        """The default model roots the list shows (never removable, never saved)."""
        items = (self.folders.item(i) for i in range(self.folders.count()))
        return [item.data(_DEFAULT_ROLE) for item in items if item.data(_DEFAULT_ROLE)]

    def _remove_folder(self) -> None:
        item = self.folders.currentItem()
        if item is not None and item.data(_FOLDER_ROLE) is not None:
            self.folders.takeItem(self.folders.row(item))
        self._update_remove()

    def _update_remove(self) -> None:
        item = self.folders.currentItem()
        self.remove_folder_button.setEnabled(
            item is not None and item.data(_FOLDER_ROLE) is not None
        )

    def result_settings(self) -> EditorSettings:
        folders = self.user_folders()
        return replace(
            self._initial,
            model_folders=folders,
            device=self.device.currentText(),
            dtype=self.dtype.currentText(),
            tensor_cache_gib=self.tensor_cache.value(),
            model_cache_gib=self.model_cache.value(),
            preview_mode=self.preview.currentText(),
            preview_vae_every=self.preview_every.value(),
            disabled_packs=self.packs.disabled(self._initial.disabled_packs),
            ray_address=self.ray_address.text().strip(),
        )


def _combo(choices: tuple[str, ...], current: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(choices))
    combo.setCurrentText(current)
    return combo


def _gib_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.25, 1024.0)
    box.setSingleStep(0.5)
    box.setDecimals(2)
    box.setSuffix(" GiB")
    box.setValue(value)
    return box
