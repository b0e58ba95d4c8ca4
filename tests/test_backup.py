"""Backups on both backend pairs: export while the stores are open, restore into an empty target, and
the restored state has the same tasks, responses, results, keys, blobs and scores; plus the refusals."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from subnet_proxy.backup import BackupError, export_backup, import_backup
from subnet_proxy.blobs import open_blob_store
from subnet_proxy.blobs.local import SMALL_BLOB_BYTES
from subnet_proxy.config import Settings
from subnet_proxy.keys import Role, open_key_store
from subnet_proxy.store import open_task_store
from subnet_proxy.tasks import FinalResult, TaskInput, TaskKind, TaskStatus
from subnet_proxy.validator.scores import ScoreBook, scores_path
from tests.store import emulators
from tests.store.factories import make_response, make_task

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "spx_backup_test_key_0123456789abcdef"


def local_settings(data_dir: Path) -> Settings:
    return Settings.model_validate({"neuron": {"data_dir": str(data_dir)}})


@asynccontextmanager
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[Callable[[str], Settings]]:
    yield lambda name: local_settings(tmp_path / name)


@asynccontextmanager
async def cloud_pair(tmp_path: Path) -> AsyncIterator[Callable[[str], Settings]]:
    """Each name gets its own Firestore project and GCS bucket on the emulators, dropped at the end."""
    emulators.emulator_host("FIRESTORE_EMULATOR_HOST")
    made: list[tuple[str, str]] = []

    def settings(name: str) -> Settings:
        project, bucket = emulators.unique_name(f"backup-{name}"), emulators.unique_name(f"backup-{name}")
        emulators.make_bucket(bucket)
        made.append((project, bucket))
        return Settings.model_validate({
            "neuron": {"data_dir": str(tmp_path / name)},
            "store": {"backend": "firestore", "firestore_project": project, "firestore_prefix": "t_"},
            "blobs": {"backend": "gcs", "gcs_bucket": bucket, "gcs_prefix": "blobs/"},
        })

    try:
        yield settings
    finally:
        for project, bucket in made:
            await asyncio.to_thread(emulators.clear_firestore, project)
            await asyncio.to_thread(emulators.drop_bucket, bucket)


PAIRS = [
    pytest.param(sqlite_pair, id="sqlite-local"),
    pytest.param(cloud_pair, id="firestore-gcs", marks=(pytest.mark.firestore, pytest.mark.gcs)),
]


async def _fill(settings: Settings) -> dict[str, object]:
    """Tasks in several states with a small and a large blob, a key, a score book; what to compare after."""
    store, blobs, keys = open_task_store(settings), open_blob_store(settings), open_key_store(settings)
    try:
        small = await blobs.put(b"RIFF small audio", content_type="audio/wav")
        large = await blobs.put(bytes(range(256)) * (SMALL_BLOB_BYTES // 128), content_type="audio/flac")
        done, _ = await store.create_task(make_task(1, kind=TaskKind.TTS, input=TaskInput(audio_blob=small.key,
                                                                                          text="hi")))
        await store.claim_tasks("v1", limit=1, lease_s=60)
        await store.record_response(make_response(done.task_id, "hk1", output_blob=large.key))
        await store.transition(done.task_id, TaskStatus.DONE, claimer="v1")
        await store.set_final_result(FinalResult(task_id=done.task_id, kind=TaskKind.TTS, hotkey="hk1", uid=0,
                                                 score=0.75, output_blob=large.key))
        await store.transition(done.task_id, TaskStatus.APPROVED)
        pending, _ = await store.create_task(make_task(2, idempotency_key="idem-2"))
        seeded = await keys.seed(API_KEY, role=Role.CLIENT, name="backup test")
        book = ScoreBook(alpha=0.5, path=scores_path(settings))
        book.update(3, "hk3", 0.8, latency_s=1.5)
        book.save()
        # the export runs while these stores are open (and the SQLite files are in WAL mode)
        return {"tasks": [done.task_id, pending.task_id], "blobs": [small.key, large.key], "key": seeded.key_id}
    finally:
        await store.close()
        await blobs.close()
        await keys.close()


async def _state(settings: Settings, made: dict[str, object]) -> dict[str, object]:
    store, blobs, keys = open_task_store(settings), open_blob_store(settings), open_key_store(settings)
    try:
        tasks = [await store.get_task(t) for t in made["tasks"]]  # type: ignore[attr-defined]
        done_id = tasks[0].task_id
        again, created = await store.create_task(make_task(2, idempotency_key="idem-2"))  # the first one stands
        authenticated = await keys.authenticate(API_KEY)
        return {
            "tasks": [t.model_dump(mode="json") for t in tasks],
            "responses": [r.model_dump(mode="json") for r in await store.list_responses(done_id)],
            "result": (await store.get_final_result(done_id)).model_dump(mode="json"),  # type: ignore[union-attr]
            "blobs": [await blobs.get(k) for k in made["blobs"]],  # type: ignore[attr-defined]
            "key": authenticated.key_id if authenticated else None,
            "idempotent": (again.task_id, created),
            "scores": json.loads(scores_path(settings).read_text()),
        }
    finally:
        await store.close()
        await blobs.close()
        await keys.close()


@pytest.mark.parametrize("pair", PAIRS)
async def test_a_restore_into_an_empty_target_has_the_same_state(pair, tmp_path: Path) -> None:
    async with pair(tmp_path) as settings_for:
        source, target = settings_for("source"), settings_for("target")
        made = await _fill(source)
        before = await _state(source, made)
        report = await asyncio.to_thread(export_backup, source, tmp_path / "backup")
        assert report.store == source.store.backend and all(report.counts.values()), report
        documents = tmp_path / "backup" / "firestore.jsonl"
        if documents.exists():  # every collection, subcollections included, without the prefix
            paths = [json.loads(line)["path"] for line in documents.read_text().splitlines()]
            assert {p.split("/")[0] for p in paths} >= {"tasks", "miner_responses", "final_results", "idempotency",
                                                       "api_keys", "files"}
            assert any(p.startswith("files/") and "/refs/" in p for p in paths)
        await asyncio.to_thread(import_backup, target, tmp_path / "backup")
        after = await _state(target, made)
        assert after == before
        assert after["key"] == made["key"] and after["idempotent"] == (made["tasks"][1], False)  # type: ignore[index]
        with pytest.raises(BackupError, match="empty"):  # the target now holds state: a second restore is refused
            await asyncio.to_thread(import_backup, target, tmp_path / "backup")


async def test_refusals_name_what_to_change(tmp_path: Path) -> None:
    source = local_settings(tmp_path / "source")
    await _fill(source)
    await asyncio.to_thread(export_backup, source, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty: export into a new folder"):
        export_backup(source, tmp_path / "backup")
    with pytest.raises(BackupError, match="has no manifest.json"):
        import_backup(local_settings(tmp_path / "t1"), tmp_path / "source")
    cloud = Settings.model_validate({"neuron": {"data_dir": str(tmp_path / "t2")}, "store": {"backend": "firestore"}})
    with pytest.raises(BackupError, match="holds a sqlite store: import it with --store sqlite"):
        import_backup(cloud, tmp_path / "backup")


def test_the_script_exports_and_imports(tmp_path: Path) -> None:
    asyncio.run(_fill(local_settings(tmp_path / "source")))

    def script(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "backup.py"), *argv], capture_output=True,
                              text=True, timeout=120)

    out = script("export", str(tmp_path / "b"), "--neuron.data_dir", str(tmp_path / "source"))
    assert out.returncode == 0 and "exported to" in out.stdout and "blob files: " in out.stdout, out.stderr
    out = script("import", str(tmp_path / "b"), "--neuron.data_dir", str(tmp_path / "target"))
    assert out.returncode == 0 and "imported from" in out.stdout, out.stderr
    out = script("import", str(tmp_path / "b"), "--neuron.data_dir", str(tmp_path / "target"))
    assert out.returncode == 1 and "backup import failed: not empty" in out.stderr
