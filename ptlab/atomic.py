"""The one way ptlab writes a file that a later run reads: complete or not at all.

    write:   temp file in the same folder → flush → fsync → os.replace → fsync the folder

A crash (even ``kill -9`` or a power cut) at any moment leaves either the old
file or the new one, never a mix. Checkpoints, ``manifest.json``,
``metrics.json``, sweep records and summaries all go through :func:`write_atomic`;
:func:`read_json` treats a file that is missing or torn (written by something
else, or damaged later) as absent, so a reader never crashes on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Callable

TEMP_PREFIX = "."  # temp files are hidden: ".NAME.PID.tmp"
TEMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before it is moved into place (unique per process)."""
    return path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then move it into place durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_text(path: Path, text: str) -> None:
    """``text`` as UTF-8, atomically."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented, key-sorted JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``; None when it is missing, unreadable or not complete JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
