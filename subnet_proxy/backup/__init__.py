"""Backups of a validator's state: ``export_backup`` to a folder, ``import_backup`` into an empty target.

A snapshot folder (``scripts/backup.py export|import``)::

    manifest.json     format, subnet-proxy version, time, the backends it came from, what it holds
    sqlite/           tasks.db and keys.db, copied online with SQLite's backup API    (--store sqlite)
    firestore.jsonl   every document of the prefixed collections, keys included       (--store firestore)
    blobs/            the local blob folder: blobs.db (backup API) and the blob files  (--blobs local)
    gcs/              the objects under --blobs.gcs_prefix and their content types    (--blobs gcs)
    scores/           DATA_DIR/scores, the validators' score books (every backend)

The manifest is written last, so a folder without one is an interrupted export. An import needs
the same backends as the export (a SQLite backup restores into SQLite) and an empty target, so a
restore never mixes with live state. Restoring gives the same tasks, responses, results, keys,
blobs and scores.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol import __version__
from subnet_proxy.backup.cloud import BackupError, export_firestore, export_gcs, import_firestore, import_gcs
from subnet_proxy.backup.files import copy_database, copy_folder, is_empty
from subnet_proxy.config import Settings

FORMAT = 1
MANIFEST = "manifest.json"
BLOB_DATABASE = "blobs.db"

__all__ = ["BackupError", "BackupReport", "export_backup", "import_backup"]


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a snapshot holds: its backends and a count per part."""

    store: str
    blobs: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Places:
    """Where the state of these settings lives on this machine."""

    tasks_db: Path
    keys_db: Path
    blob_dir: Path
    scores: Path

    @classmethod
    def of(cls, settings: Settings) -> _Places:
        data = settings.data_dir
        return cls(tasks_db=Path(settings.store.sqlite_path or data / "tasks.db"), keys_db=data / "keys.db",
                   blob_dir=Path(settings.blobs.local_dir or data / "blobs"), scores=data / "scores")


def export_backup(settings: Settings, dest: Path) -> BackupReport:
    """Snapshot the state of ``settings`` into ``dest`` (a new or empty folder), online."""
    if not is_empty(dest):
        raise BackupError(f"{dest} is not empty: export into a new folder")
    places = _Places.of(settings)
    dest.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    if settings.store.backend == "sqlite":
        counts["task databases"] = int(copy_database(places.tasks_db, dest / "sqlite" / "tasks.db"))
        counts["key databases"] = int(copy_database(places.keys_db, dest / "sqlite" / "keys.db"))
    else:
        counts["firestore documents"] = export_firestore(settings, dest / "firestore.jsonl")
    if settings.blobs.backend == "local":
        counts["blob files"] = copy_folder(places.blob_dir, dest / "blobs", database=BLOB_DATABASE)
    else:
        counts["gcs objects"] = export_gcs(settings, dest / "gcs")
    counts["score files"] = copy_folder(places.scores, dest / "scores")
    report = BackupReport(store=settings.store.backend, blobs=settings.blobs.backend, counts=counts)
    manifest = {"format": FORMAT, "version": __version__, "created": time.time(), **asdict(report)}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return report


def _read_manifest(source: Path) -> BackupReport:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{source} has no {MANIFEST}: not a backup, or an interrupted export") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is a backup of format {manifest.get('format')}; this build reads {FORMAT}")
    return BackupReport(store=manifest["store"], blobs=manifest["blobs"], counts=manifest["counts"])


def import_backup(settings: Settings, source: Path) -> BackupReport:
    """Restore the snapshot in ``source`` into the (empty) state of ``settings``."""
    report = _read_manifest(source)
    for part, have, want in (("store", report.store, settings.store.backend),
                             ("blobs", report.blobs, settings.blobs.backend)):
        if have != want:
            raise BackupError(f"this backup holds a {have} {part}: import it with --{part} {have}")
    places = _Places.of(settings)
    targets = [places.scores] + ([places.tasks_db, places.keys_db] if report.store == "sqlite" else []) \
        + ([places.blob_dir] if report.blobs == "local" else [])
    taken = [str(path) for path in targets if not is_empty(path)]
    if taken:
        raise BackupError(f"not empty: {', '.join(taken)}; restore into an empty data dir")
    if report.store == "sqlite":
        copy_database(source / "sqlite" / "tasks.db", places.tasks_db)
        copy_database(source / "sqlite" / "keys.db", places.keys_db)
    else:
        import_firestore(settings, source / "firestore.jsonl")
    if report.blobs == "local":
        copy_folder(source / "blobs", places.blob_dir, database=BLOB_DATABASE)
    else:
        import_gcs(settings, source / "gcs")
    copy_folder(source / "scores", places.scores)
    return report
