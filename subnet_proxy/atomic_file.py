"""Write a JSON file whole or not at all: a reader (or a crash) never sees half of it.

The data goes to a temporary file in the same folder, is flushed to disk, then replaces the target
with ``os.replace`` (atomic on POSIX and Windows), and the folder is flushed so the new name is on
disk too. The local chain, the score book and the
local blob store use it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Replace ``path`` with ``data`` as JSON; on any failure the old file stays as it was."""
    write_bytes_atomic(path, json.dumps(data, indent=indent).encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``; on any failure the old file stays as it was (the blob store uses
    it too). ``durable``: the data and the new name are on disk when this returns (file and folder
    fsynced); without it the file survives a crash of the process, not necessarily a power loss.

    The temporary name is the target's with this process and thread in it: unique among concurrent
    writers without ``mkstemp``'s retries and buffered file object (a third of a small blob's write
    cost, measured); a leftover of a crashed writer is overwritten by the next one of that name.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:  # the folder is new
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder and needs no such step)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
