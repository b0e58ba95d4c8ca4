"""Write a JSON file whole or not at all: a reader (or a crash) never sees half of it.

The data goes to a temporary file in the same folder, is flushed to disk, then replaces the target
with ``os.replace`` (atomic on POSIX and Windows). The local chain, the score book and the
local blob store use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Replace ``path`` with ``data`` as JSON; on any failure the old file stays as it was."""
    write_bytes_atomic(path, json.dumps(data, indent=indent).encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``; on any failure the old file stays as it was (the blob store uses
    it too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
