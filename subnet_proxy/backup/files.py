"""The embedded backends' half of a backup: SQLite databases through the online backup API, files by copy.

``sqlite3.Connection.backup`` copies a database page by page inside one read transaction, so the copy
is the database as of one moment while the validator keeps writing (WAL readers do not block
writers). Blob files are content-addressed and written atomically, and the blob database is copied
before them: every blob the copied rows name was already a file when the copy of files started.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

#: files of a live SQLite database that are not part of a copy (the backup API reads through them).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def copy_database(source: Path, target: Path) -> bool:
    """A consistent copy of the SQLite database ``source`` (False when there is none)."""
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()
    return True


def _is_database_file(path: Path, database: str) -> bool:
    return path.name == database or any(path.name == database + side for side in SQLITE_SIDE_FILES)


def copy_folder(source: Path, target: Path, *, database: str | None = None) -> int:
    """Copy a folder tree (files copied: the count); ``database``, a file name in it, goes by the backup API."""
    if not source.is_dir():
        return 0
    count = 0
    if database is not None and copy_database(source / database, target / database):
        count += 1
    for path in sorted(source.rglob("*")):
        if path.is_dir() or (database is not None and path.parent == source and _is_database_file(path, database)):
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
        count += 1
    return count


def is_empty(path: Path) -> bool:
    """Nothing there yet: a missing path, an empty folder, or an empty file."""
    if not path.exists():
        return True
    if path.is_dir():
        return not any(path.iterdir())
    return path.stat().st_size == 0
