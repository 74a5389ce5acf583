"""`main.py gui FILE --run --screenshot OUT.png` runs the graph, saves the window, quits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from nodeui.app import SCREENSHOT_SIZE

ROOT = Path(__file__).resolve().parents[2]


def test_gui_run_screenshot_writes_a_png_and_quits(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)  # main.py must choose offscreen by itself
    env["LATENTLOOM_SETTINGS"] = str(tmp_path / "settings.ini")
    env["LATENTLOOM_DATA_DIR"] = str(tmp_path / "data")
    shot = tmp_path / "shot.png"
    workflow = ROOT / "resources" / "workflows" / "default.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "gui",
            str(workflow),
            "--run",
            "--screenshot",
            str(shot),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    picture = QImage(str(shot))
    assert not picture.isNull()
    assert (picture.width(), picture.height()) == SCREENSHOT_SIZE
    assert list((tmp_path / "output").glob("*.png")), "the run wrote its output"
    assert not (tmp_path / "data" / "recovery" / "recovery.json").exists()


def test_gui_screenshot_of_a_bad_file_exits_2_with_the_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LATENTLOOM_SETTINGS"] = str(tmp_path / "settings.ini")
    env["LATENTLOOM_DATA_DIR"] = str(tmp_path / "data")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", str(bad), "--screenshot", "x.png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_gui_opens_a_comfyui_file_given_on_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LATENTLOOM_SETTINGS"] = str(tmp_path / "settings.ini")
    env["LATENTLOOM_DATA_DIR"] = str(tmp_path / "data")
    comfy = ROOT / "tests" / "interop" / "fixtures" / "txt2img_api.json"
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", str(comfy), "--screenshot", str(shot)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not QImage(str(shot)).isNull()
