"""Writing files safely: atomic replacement, and new outputs that stay inside the output folder.

Everything LatentLoom writes goes through here. A crash never leaves half a file, and a file
gets the permissions of any file the user makes (their umask), or keeps those it had. A run's
outputs are named by the workflow, which may come from anyone, so an output name is checked
and resolved here: it stays inside the output folder (subfolders included, symlinks followed),
never replaces a file, and two writers saving into one folder at once never take the same name.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Longest folder or file name in an output name, in UTF-8 bytes. File systems allow 255; the
#: counter, the extension and the temporary file's marks need the rest.
MAX_PART_BYTES = 200
#: Longest output name, subfolders included, in UTF-8 bytes.
MAX_NAME_BYTES = 1000
#: A temporary file of ours whose writer is no longer running is removed once untouched this
#: long (a writer on another machine sharing the folder keeps touching it while it writes).
DEAD_WRITER_GRACE_S = 60.0
#: A temporary file of ours untouched this long is removed whatever its pid says (pids are
#: reused, and no save pauses this long).
STALE_TEMP_S = 3600.0

_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_SEPARATORS = re.compile(r"[\\/]")
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Our temporary files, ``.NAME.~PID~TOKEN.tmp`` beside the file being written; nothing else
#: is ever cleaned up.
_TEMP = re.compile(r"^\..*\.~(?P<pid>[0-9]+)~[0-9a-f]{8}\.tmp$", re.DOTALL)
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP}

#: A file's contents: its bytes, or a function writing them into the open file.
Contents = bytes | Callable[[BinaryIO], None]


class OutputPathError(ValueError):
    """An output name that leads outside the output folder or that no file system accepts.

    The message is one line for the user: what is wrong with the name and what to do.
    """


class OutputWriteError(Exception):
    """The file system refused to write an output (no space, no permission); says where."""


def check_output_name(name: object) -> str | None:
    """Why ``name`` cannot name a file inside the output folder, or None when it can.

    ``/`` (or ``\\``, as written on Windows) separates subfolders: ``folder/name`` is fine.
    Refused: empty names, control characters (NUL included), absolute paths, ``.`` and ``..``
    parts, Windows device names (CON, NUL, COM1…), and names too long for a file system.
    """
    if not isinstance(name, str):
        return f"{name!r} is not text: give a file name such as 'folder/name'"
    shown = _shown(name)
    if not name.strip():
        return "the file name is empty: give one, such as 'LatentLoom' or 'folder/name'"
    if "\0" in name:
        return f"{shown} contains a NUL character: remove it"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"{shown} contains a control character: remove it"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{shown} is not valid Unicode text: retype the name"
    if name[0] in "/\\" or _DRIVE.match(name):
        return (
            f"{shown} is an absolute path: give a name inside the output folder, "
            f"such as 'folder/name'"
        )
    if size > MAX_NAME_BYTES:
        return f"{shown} is {size} bytes long: keep the whole name under {MAX_NAME_BYTES}"
    for part in _SEPARATORS.split(name):
        if part == "..":
            return (
                f"{shown} leads outside the output folder ('..'): give a name inside it, "
                f"such as 'folder/name'"
            )
        if part in ("", "."):
            return f"{shown} has an empty or '.' folder name: remove the extra '/' or '.'"
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            return (
                f"{shown} has a folder or file name of {len(part.encode('utf-8'))} bytes: "
                f"keep each under {MAX_PART_BYTES}"
            )
        if part.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
            return f"{shown}: '{part}' is a device name reserved by Windows: choose another name"
    return None


def resolve_output(output_dir: str | os.PathLike[str], name: str) -> Path:
    """The real path ``name`` gives inside ``output_dir``, its folders made and symlinks followed.

    Raises ``OutputPathError`` for a name ``check_output_name`` refuses, and for one whose
    subfolders lead outside the output folder through a symlink.
    """
    reason = check_output_name(name)
    if reason is not None:
        raise OutputPathError(reason)
    *folders, last = _SEPARATORS.split(name)
    root = Path(output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create the output folder {root}: {_why(exc)}") from None
    root = root.resolve()
    # Checked before making the subfolders, so none is ever made outside, and after, because
    # making them walks through whatever is there now.
    folder = _inside(root, root.joinpath(*folders), name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(
            f"{_shown(name)}: a file in the output folder has the name of one of its "
            f"folders: choose another name"
        ) from None
    except OSError as exc:
        raise OutputWriteError(f"cannot create the folder {folder}: {_why(exc)}") from None
    return _inside(root, folder, name) / last


def write_new_output(
    output_dir: str | os.PathLike[str],
    name: str,
    suffix: str,
    data: Contents,
    *,
    plain_first: bool = False,
) -> Path:
    """Writes ``data`` to a new file ``name_00001{suffix}`` inside ``output_dir`` and returns it.

    ``data`` is the file's bytes, or a function that writes them into the open file (for
    files too big to hold twice in memory, such as model checkpoints).

    The number is one past the highest of that name already there; a name another writer
    takes meanwhile is skipped, never replaced (exclusive create). With ``plain_first``,
    ``name{suffix}`` itself is taken when free. Readers never see half a file: it is written
    under a temporary name, then given its own. The returned path is ``output_dir`` joined
    with the file's name as the user wrote it.
    """
    target = resolve_output(output_dir, name)
    folder, stem = target.parent, target.name
    shown = Path(output_dir).joinpath(*_SEPARATORS.split(name)[:-1])
    try:
        highest = _highest_number(folder, stem, suffix)
        tmp = _write_temp(folder, stem + suffix, data)
        try:
            for filename in _candidates(stem, suffix, highest, plain_first):
                if _claim(tmp, folder / filename):
                    break
            else:
                raise OutputWriteError(f"no free file name for {stem}{suffix} in {shown}")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise OutputPathError(
                f"{_shown(name)}: the path in {shown} is too long for this system: "
                f"choose a shorter name or output folder"
            ) from None
        raise OutputWriteError(f"cannot write into {shown}: {_why(exc)}") from None
    _fsync_folder(folder)
    return shown / filename


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` so that a crash leaves the old file or the new one, never
    half of one: temporary file in the same folder, fsync, rename, fsync the folder. A new file
    follows the umask; a replaced one keeps its permissions."""
    path = Path(path)
    _remove_stale_temps(path.parent)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    tmp = _write_temp(path.parent, path.name, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _write_temp(folder: Path, name: str, data: Contents, mode: int | None = None) -> Path:
    """A new, fully written and fsynced temporary file for ``name`` in ``folder``.

    Created with mode 0666 so the umask applies as to any file the user makes (``mkstemp``
    would make it 0600); ``mode``, when given, replaces that. The writer's pid is in the name
    so a later write can tell a dead writer's leftover from a file being filled now.
    """
    short = os.fsdecode(os.fsencode(name)[:60])
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f".{short}.~{os.getpid()}~{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.chmod(tmp, mode)
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _claim(tmp: Path, target: Path) -> bool:
    """Gives the finished ``tmp`` the name ``target`` unless that name exists; True if it did.

    A hard link creates the name exclusively with the whole file already behind it. Where the
    file system has no hard links, the name is reserved by an exclusive create and the file
    then moved onto the reservation.
    """
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        os.close(os.open(target, flags, 0o666))
    except FileExistsError:
        return False
    os.replace(tmp, target)
    return True


def _candidates(stem: str, suffix: str, highest: int, plain_first: bool) -> Iterator[str]:
    """File names to try in turn: ``stem{suffix}`` if asked, then numbers past ``highest``."""
    if plain_first:
        yield f"{stem}{suffix}"
    for number in itertools.count(highest + 1):
        yield f"{stem}_{number:05d}{suffix}"


def _highest_number(folder: Path, stem: str, suffix: str) -> int:
    """The highest N of the files ``stem_N{suffix}`` in ``folder`` (0 if none), matched as
    plain text, never as a pattern; removes stale temporary files of ours on the way."""
    highest = 0
    start = f"{stem}_"
    now = time.time()
    with os.scandir(folder) as entries:
        for entry in entries:
            filename = entry.name
            if filename.startswith(start) and filename.endswith(suffix):
                number = filename[len(start) : len(filename) - len(suffix)]
                if number.isascii() and number.isdigit():
                    highest = max(highest, int(number))
            elif match := _TEMP.match(filename):
                _remove_if_stale(entry, match, now)
    return highest


def _remove_stale_temps(folder: Path) -> None:
    """Removes temporary files of ours in ``folder`` that no running write will finish."""
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if match := _TEMP.match(entry.name):
                    _remove_if_stale(entry, match, now)
    except OSError:
        return


def _remove_if_stale(entry: os.DirEntry[str], match: re.Match[str], now: float) -> None:
    """Removes our temporary file ``entry`` if its writer is gone or it is long untouched."""
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode):
        return
    idle = now - info.st_mtime
    dead = idle > DEAD_WRITER_GRACE_S and not _running(int(match["pid"]))
    if dead or idle > STALE_TEMP_S:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine; True when that cannot be told."""
    if os.name == "nt":  # os.kill would terminate it there: rely on the file's age alone
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _inside(root: Path, folder: Path, name: str) -> Path:
    """``folder`` with symlinks resolved, if that is ``root`` or inside it."""
    real = folder.resolve()
    if real != root and not real.is_relative_to(root):
        raise OutputPathError(
            f"{_shown(name)} leads outside the output folder through a linked folder "
            f"(to {real}): give a name inside it"
        )
    return real


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _shown(name: str) -> str:
    """``name`` quoted for a message, shortened, control characters escaped."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
