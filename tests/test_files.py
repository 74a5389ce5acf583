"""Output files: names stay inside the output folder, never replace a file, and writes are
atomic with normal permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core import files
from core.files import (
    OutputPathError,
    atomic_write,
    check_output_name,
    resolve_output,
    write_new_output,
)

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and processes")

REFUSED = [
    ("../../X", "leads outside the output folder"),
    ("a/../../X", "leads outside the output folder"),
    ("/abs/X", "absolute path"),
    ("\\\\server\\share\\X", "absolute path"),
    ("C:\\Users\\X", "absolute path"),
    ("a\0b", "NUL character"),
    ("a\nb", "control character"),
    ("x" * 300, "300 bytes"),
    ("/".join(["d" * 150] * 8), "whole name under"),
    ("CON", "reserved by Windows"),
    ("folder/lpt1.txt", "reserved by Windows"),
    ("", "empty"),
    ("a//b", "empty or '.'"),
    ("./a", "empty or '.'"),
    ("folder/", "empty or '.'"),
    ("\ud800", "not valid Unicode"),
]


@pytest.mark.parametrize(("name", "reason"), REFUSED)
def test_refused_names_say_why_and_write_nothing(tmp_path, name, reason):
    assert reason in check_output_name(name)
    out = tmp_path / "deep" / "out"
    with pytest.raises(OutputPathError, match=reason):
        write_new_output(out, name, ".png", b"png")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["LatentLoom", "folder/name", "a/b/c", "won't [1] {x}", "été"])
def test_names_inside_the_output_folder_are_accepted(tmp_path, name):
    assert check_output_name(name) is None
    path = write_new_output(tmp_path, name, ".png", b"png")
    assert path == tmp_path.joinpath(*name.split("/")[:-1], name.split("/")[-1] + "_00001.png")
    assert path.read_bytes() == b"png"


def test_windows_separators_make_subfolders_inside(tmp_path):
    path = write_new_output(tmp_path, "folder\\name", ".png", b"x")
    assert path == tmp_path / "folder" / "name_00001.png" and path.is_file()


@posix_only
def test_a_linked_subfolder_leading_outside_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "escape").symlink_to(elsewhere)
    (out / "dangling").symlink_to(tmp_path / "missing")
    for name in ("escape/X", "escape/new/X", "dangling/X"):
        with pytest.raises(OutputPathError, match="outside the output folder through a linked"):
            write_new_output(out, name, ".png", b"x")
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "missing").exists()


@posix_only
def test_a_linked_subfolder_inside_and_a_linked_output_folder_are_fine(tmp_path):
    real = tmp_path / "real"
    (real / "inner").mkdir(parents=True)
    (real / "alias").symlink_to(real / "inner")
    (tmp_path / "out").symlink_to(real)
    path = write_new_output(tmp_path / "out", "alias/x", ".png", b"x")
    assert path == tmp_path / "out" / "alias" / "x_00001.png"
    assert (real / "inner" / "x_00001.png").read_bytes() == b"x"
    assert resolve_output(tmp_path / "out", "alias/x") == real / "inner" / "x"


def test_numbers_follow_the_highest_and_never_replace(tmp_path):
    (tmp_path / "img_00007.png").write_bytes(b"old")
    (tmp_path / "img_x_00099.png").write_bytes(b"other name")
    assert write_new_output(tmp_path, "img", ".png", b"new").name == "img_00008.png"
    assert write_new_output(tmp_path, "img", ".png", b"new").name == "img_00009.png"
    assert (tmp_path / "img_00007.png").read_bytes() == b"old"


def test_pattern_characters_in_a_prefix_are_plain_text(tmp_path):
    names = [write_new_output(tmp_path, "a[1]*?", ".png", b"x").name for _ in range(3)]
    assert names == ["a[1]*?_00001.png", "a[1]*?_00002.png", "a[1]*?_00003.png"]


def test_plain_first_takes_the_name_then_numbers(tmp_path):
    names = [write_new_output(tmp_path, "note", ".txt", b"t", plain_first=True) for _ in range(3)]
    assert [p.name for p in names] == ["note.txt", "note_00001.txt", "note_00002.txt"]


def test_a_taken_number_is_skipped_without_replacing(tmp_path, monkeypatch):
    """Another writer taking the number just found: the next number is tried instead."""
    real_highest = files._highest_number

    def highest_then_race(folder, stem, suffix):
        found = real_highest(folder, stem, suffix)
        (folder / f"{stem}_{found + 1:05d}{suffix}").write_bytes(b"theirs")
        return found

    monkeypatch.setattr(files, "_highest_number", highest_then_race)
    assert write_new_output(tmp_path, "img", ".png", b"mine").name == "img_00002.png"
    assert (tmp_path / "img_00001.png").read_bytes() == b"theirs"


@pytest.mark.parametrize("without_hard_links", [False, True])
def test_no_temporary_file_is_left_after_a_write(tmp_path, monkeypatch, without_hard_links):
    if without_hard_links:  # FAT, some network shares: reserve, then move onto the reservation

        def no_link(src, dst):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(files.os, "link", no_link)
    (tmp_path / "img_00001.png").write_bytes(b"old")
    path = write_new_output(tmp_path, "img", ".png", b"new")
    assert sorted(os.listdir(tmp_path)) == ["img_00001.png", "img_00002.png"]
    assert path.read_bytes() == b"new" and (tmp_path / "img_00001.png").read_bytes() == b"old"


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.files import write_new_output
    folder, who, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for i in range(count):
        write_new_output(folder, "race", ".png", f"{who}{i}".encode())
    """
)


@posix_only
def test_two_processes_saving_at_once_keep_every_file(tmp_path):
    count = 60
    go = tmp_path / "go"
    out = tmp_path / "out"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(out), who, str(count), str(go)],
            cwd=Path(__file__).parents[1],
        )
        for who in "ab"
    ]
    time.sleep(0.3)  # both started and waiting
    go.touch()
    assert [r.wait(timeout=30) for r in racers] == [0, 0]
    written = sorted(p.read_text() for p in out.iterdir())
    assert written == sorted(f"{who}{i}" for who in "ab" for i in range(count))
    assert sorted(p.name for p in out.iterdir()) == [f"race_{n:05d}.png" for n in range(1, 121)]


@posix_only
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        new = write_new_output(tmp_path, "img", ".png", b"x")
        atomic_write(tmp_path / "flow.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "flow.json").stat().st_mode) == mode


@posix_only
def test_atomic_write_keeps_an_existing_files_mode(tmp_path):
    path = tmp_path / "flow.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _aged(path: Path, seconds: float) -> Path:
    path.write_bytes(b"\0" * 64)
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


@posix_only
@pytest.mark.parametrize("write", ["new_output", "atomic_write"])
def test_stale_temporary_files_of_ours_are_removed_on_the_next_write(tmp_path, write):
    dead, alive = _dead_pid(), os.getpid()
    gone = [
        _aged(tmp_path / f".img_00001.png.~{dead}~0123abcd.tmp", 120),  # killed writer
        _aged(tmp_path / f".flow.json.~{alive}~0123abcd.tmp", 2 * files.STALE_TEMP_S),
    ]
    kept = [
        _aged(tmp_path / f".img_00002.png.~{dead}~89abcdef.tmp", 1),  # may be another host's
        _aged(tmp_path / f".img_00003.png.~{alive}~89abcdef.tmp", 120),  # a live writer's
        _aged(tmp_path / ".img_00004.png.k2j4h5g6.tmp", 10 * files.STALE_TEMP_S),  # not ours
        _aged(tmp_path / f"img.~{dead}~0123abcd.tmp", 120),  # not hidden: not ours
        _aged(tmp_path / "notes.tmp", 10 * files.STALE_TEMP_S),
    ]
    if write == "new_output":
        write_new_output(tmp_path, "img", ".png", b"x")
    else:
        atomic_write(tmp_path / "flow.json", b"{}")
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in kept)


def test_a_writer_function_streams_the_contents_and_a_failing_one_leaves_nothing(tmp_path):
    def write(stream):
        for part in (b"first ", b"second"):
            stream.write(part)

    path = write_new_output(tmp_path, "model", ".bin", write)
    assert path == tmp_path / "model_00001.bin" and path.read_bytes() == b"first second"

    def fail(stream):
        stream.write(b"half a file")
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        write_new_output(tmp_path, "model", ".bin", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_00001.bin"]
