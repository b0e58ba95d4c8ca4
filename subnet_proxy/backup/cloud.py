"""The cloud backends' half of a backup: Firestore documents to JSON lines, GCS objects to files, and back.

Every collection whose name starts with ``--store.firestore_prefix`` is walked with its
subcollections (also parent paths that hold only subcollections, like ``files/{blob}/refs``), so a
collection added to the store later is backed up without a change here. Paths are written without
the prefix, and an import writes them under the target's prefix. Values keep their Firestore types
through tagged JSON (timestamps, bytes, references). The export is a live walk, not a point in time:
take it while the validators are stopped or idle, or accept that tasks moving during the walk are
copied in whichever state each read saw.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from subnet_proxy.config import Settings

#: documents per Firestore write batch (the service allows 500).
BATCH = 400


class BackupError(RuntimeError):
    """A backup cannot be taken or restored; the message says what to change."""


def _encode(value: Any) -> Any:
    from google.cloud import firestore

    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, datetime):
        return {"__ts__": value.isoformat()}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, firestore.DocumentReference):
        return {"__ref__": value.path}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise BackupError(f"cannot back up a Firestore value of type {type(value).__name__}")


def _decode(value: Any, client: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item, client) for item in value]
    if isinstance(value, dict):
        if value.keys() == {"__ts__"}:
            return datetime.fromisoformat(value["__ts__"])
        if value.keys() == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        if value.keys() == {"__ref__"}:
            return client.document(value["__ref__"])
        return {key: _decode(item, client) for key, item in value.items()}
    return value


def firestore_client(settings: Settings) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=settings.store.firestore_project, database=settings.store.firestore_database)


def _walk(collection: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for ref in collection.list_documents():  # also documents that exist only as parents of subcollections
        snap = ref.get()
        if snap.exists:
            yield ref.path, snap.to_dict() or {}
        for sub in ref.collections():
            yield from _walk(sub)


def _root_collections(client: Any, prefix: str) -> list[Any]:
    return [c for c in client.collections() if c.id.startswith(prefix)]


def export_firestore(settings: Settings, out: Path) -> int:
    """Every document under the prefix into ``out`` (JSON lines); returns how many."""
    client = firestore_client(settings)
    prefix = settings.store.firestore_prefix
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        for collection in _root_collections(client, prefix):
            for path, data in _walk(collection):
                fh.write(json.dumps({"path": path[len(prefix):], "data": _encode(data)}) + "\n")
                count += 1
    client.close()
    return count


def import_firestore(settings: Settings, source: Path) -> int:
    """Write the documents of ``source`` under the target prefix; refuses a database that has any."""
    client = firestore_client(settings)
    prefix = settings.store.firestore_prefix
    try:
        taken = [c.id for c in _root_collections(client, prefix) if next(iter(c.limit(1).stream()), None)]
        if taken:
            raise BackupError(f"the Firestore collections {taken} already hold documents: restore into an empty "
                              "database, or choose another --store.firestore_prefix")
        count = 0
        batch = client.batch()
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                batch.set(client.document(prefix + doc["path"]), _decode(doc["data"], client))
                count += 1
                if count % BATCH == 0:
                    batch.commit()
                    batch = client.batch()
        batch.commit()
        return count
    finally:
        client.close()


def _bucket(settings: Settings) -> Any:
    from google.cloud import storage  # type: ignore[attr-defined]

    if not settings.blobs.gcs_bucket:
        raise BackupError("--blobs.gcs_bucket is required for the gcs blob store")
    return storage.Client().bucket(settings.blobs.gcs_bucket)


def export_gcs(settings: Settings, folder: Path) -> int:
    """Every object under ``--blobs.gcs_prefix`` into ``folder`` (content types in ``index.jsonl``)."""
    bucket = _bucket(settings)
    prefix = settings.blobs.gcs_prefix
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with (folder / "index.jsonl").open("w", encoding="utf-8") as index:
        for blob in bucket.client.list_blobs(bucket, prefix=prefix):
            name = blob.name[len(prefix):]
            if not name or "/" in name:
                raise BackupError(f"unexpected object {blob.name!r} under the blob prefix {prefix!r}")
            blob.download_to_filename(str(folder / name))
            index.write(json.dumps({"name": name, "content_type": blob.content_type}) + "\n")
            count += 1
    return count


def import_gcs(settings: Settings, folder: Path) -> int:
    """Upload the objects of ``folder`` under the target prefix; an object already there is refused."""
    from google.api_core import exceptions as gexc

    bucket = _bucket(settings)
    prefix = settings.blobs.gcs_prefix
    if next(iter(bucket.client.list_blobs(bucket, prefix=prefix, max_results=1)), None) is not None:
        raise BackupError(f"gs://{bucket.name}/{prefix} already holds objects: restore into an empty bucket or prefix")
    count = 0
    with (folder / "index.jsonl").open(encoding="utf-8") as index:
        for line in index:
            item = json.loads(line)
            try:
                bucket.blob(prefix + item["name"]).upload_from_filename(
                    str(folder / item["name"]), content_type=item["content_type"], if_generation_match=0)
            except gexc.PreconditionFailed as exc:
                raise BackupError(f"object {prefix + item['name']} appeared during the restore") from exc
            count += 1
    return count
