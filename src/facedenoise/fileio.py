"""Atomic writes: a temporary file beside the target, then a rename, so that an interrupted
write never leaves a half-written file under the final name.

The temporary file is `.<target name>.<8 characters><target suffix>`, created with mode 0666
less the umask (as `cp` would create a new file); replacing an existing file keeps that file's
mode. A process killed mid-write leaves such a file behind: `remove_stale_temps` deletes the
ones a later run can prove are abandoned.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

_TOKEN_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # also what mkstemp used before
_TOKEN_LENGTH = 8


def _create_temp(target: Path, suffix: str) -> Path:
    """Create an empty, new temporary file beside `target` and return its path."""
    for _ in range(100):
        token = "".join(secrets.choice(_TOKEN_CHARACTERS) for _ in range(_TOKEN_LENGTH))
        temp_path = target.parent / f".{target.name}.{token}{suffix}"
        try:
            # 0o666: the kernel applies the umask, so the file gets the mode `cp` would give it.
            handle = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(handle)
        return temp_path
    raise FileExistsError(f"no free temporary name beside {target}")


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str | None = None):
    """Yield a temporary path beside `target`; on success rename it onto `target`.

    `suffix` defaults to the target's suffix so that writers that pick a format from the
    extension (OpenCV, matplotlib, Keras) still see the right one. A new file gets mode 0666
    less the umask; an existing target keeps its mode.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp_path = _create_temp(target, target.suffix if suffix is None else suffix)
    try:
        yield temp_path
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp_path, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temp_path, target)
    finally:
        temp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as temp_path:
        temp_path.write_bytes(data)


def atomic_write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def stale_temp_pattern(name: str) -> re.Pattern:
    """The names `atomic_path` gives the temporary files of a target called `name`."""
    suffix = Path(name).suffix
    return re.compile(
        rf"\.{re.escape(name)}\.[{_TOKEN_CHARACTERS}]{{{_TOKEN_LENGTH}}}{re.escape(suffix)}"
    )


def remove_stale_temps(folder: Path, names: Iterable[str], older_than: float) -> int:
    """Delete the temporary files of `atomic_path` for targets `names` in `folder`.

    Only regular files that match the pattern exactly and were last modified before
    `older_than` (a `time.time()` value, usually when the current run started) are deleted:
    a write still in progress in another process is newer. Returns how many were deleted.
    """
    patterns = [stale_temp_pattern(name) for name in names]
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not any(pattern.fullmatch(entry.name) for pattern in patterns):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < older_than:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to delete: leave it
    return removed
