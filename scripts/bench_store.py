"""Store benchmark: SQLite vs the Firestore emulator, local files vs fake-gcs-server, in one run.

For each TaskStore the same workload runs: create N tasks (C at once, as a busy side-server would),
claim them all in batches of 10 (one validator), record one miner response per task and move each
task to DONE. For each BlobStore: put N blobs of 64 KB, get each back (verified), stat each.
Printed per phase: operations per second of each backend, side by side, and the cloud/embedded
ratio measured in this run (the embedded backend is the baseline).

The emulators are Google's Firestore emulator and fake-gcs-server on loopback, not the cloud
services: the figures compare code paths and round trips on this machine, not production latency.
Without FIRESTORE_EMULATOR_HOST / STORAGE_EMULATOR_HOST set the script starts its own pair through
scripts/emulators.sh and stops it at the end. Run: ``python scripts/bench_store.py [-n 300] [-c 16]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from subnet_proxy.blobs import BlobStore, LocalBlobStore  # noqa: E402
from subnet_proxy.config import BlobSettings, StoreSettings  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore, TaskStore  # noqa: E402
from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind, TaskStatus  # noqa: E402

Phase = tuple[str, int, float]  # (name, operations, seconds)


async def bounded(concurrency: int, jobs: list[Callable[[], Awaitable[object]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def timed(name: str, ops: int, work: Awaitable[object]) -> Phase:
    started = time.perf_counter()
    await work
    return name, ops, time.perf_counter() - started


async def task_workload(store: TaskStore, n: int, concurrency: int) -> list[Phase]:
    tasks = [Task(kind=TaskKind.SUMMARIZATION, owner="bench", input=TaskInput(text=f"text {i} " * 20))
             for i in range(n)]
    phases = [await timed("create", n, bounded(concurrency, [lambda t=t: store.create_task(t) for t in tasks]))]

    async def claim_all() -> None:
        taken = 0
        while batch := await store.claim_tasks("bench-validator", limit=10, lease_s=300):
            taken += len(batch)
        if taken != n:
            raise RuntimeError(f"claimed {taken} of {n} tasks")

    phases.append(await timed("claim", n, claim_all()))

    def respond(task: Task) -> Callable[[], Awaitable[object]]:
        return lambda: store.record_response(
            MinerResponse(task_id=task.task_id, hotkey="miner-hotkey", uid=1, state="ok", text="summary")
        )

    phases.append(await timed("record response", n, bounded(concurrency, [respond(t) for t in tasks])))
    done = [lambda t=t: store.transition(t.task_id, TaskStatus.DONE, claimer="bench-validator") for t in tasks]
    phases.append(await timed("transition", n, bounded(concurrency, done)))
    return phases


async def blob_workload(store: BlobStore, n: int, concurrency: int) -> list[Phase]:
    payloads = [os.urandom(64 * 1024) for _ in range(n)]
    keys: list[str] = []

    async def put(data: bytes) -> None:
        keys.append((await store.put(data, content_type="audio/wav")).key)

    phases = [await timed("put 64KB", n, bounded(concurrency, [lambda d=d: put(d) for d in payloads]))]
    phases.append(await timed("get 64KB", n, bounded(concurrency, [lambda k=k: store.get(k) for k in keys])))
    phases.append(await timed("stat", n, bounded(concurrency, [lambda k=k: store.stat(k) for k in keys])))
    return phases


@contextmanager
def emulators() -> Iterator[None]:
    """Use the running emulators, or start a private pair for this run and stop it after."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST") and os.environ.get("STORAGE_EMULATOR_HOST"):
        yield
        return
    state = tempfile.mkdtemp(prefix="bench-emulators-")
    env = {**os.environ, "EMULATORS_DIR": state}
    script = str(ROOT / "scripts" / "emulators.sh")
    try:
        out = subprocess.run([script, "start"], env=env, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            os.environ[name] = value
        yield
    finally:
        subprocess.run([script, "stop"], env=env, check=False)


def print_table(title: str, base_name: str, base: list[Phase], cloud_name: str, cloud: list[Phase]) -> None:
    print(f"\n{title}")
    print(f"{'phase':<16} {base_name + ' ops/s':>16} {cloud_name + ' ops/s':>20} {'ratio':>8}")
    for (phase, ops, base_s), (_, _, cloud_s) in zip(base, cloud, strict=True):
        base_rate, cloud_rate = ops / base_s, ops / cloud_s
        print(f"{phase:<16} {base_rate:>16.0f} {cloud_rate:>20.0f} {cloud_rate / base_rate:>7.3g}x")


async def main(n: int, concurrency: int) -> None:
    from google.cloud import storage  # type: ignore[attr-defined]

    from subnet_proxy.blobs.gcs import GCSBlobStore
    from subnet_proxy.store.firestore import FirestoreTaskStore

    with tempfile.TemporaryDirectory() as tmp:
        sqlite: TaskStore = SQLiteTaskStore(Path(tmp) / "bench.db")
        firestore_store: TaskStore = FirestoreTaskStore(
            StoreSettings(backend="firestore", firestore_project=f"bench-{uuid.uuid4().hex[:8]}")
        )
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(lambda: storage.Client().create_bucket(bucket))
        local: BlobStore = LocalBlobStore(Path(tmp) / "blobs")
        gcs: BlobStore = GCSBlobStore(BlobSettings(backend="gcs", gcs_bucket=bucket))
        try:
            sqlite_phases = await task_workload(sqlite, n, concurrency)
            firestore_phases = await task_workload(firestore_store, n, concurrency)
            local_phases = await blob_workload(local, n, concurrency)
            gcs_phases = await blob_workload(gcs, n, concurrency)
        finally:
            for store in (sqlite, firestore_store, local, gcs):
                await store.close()
    print(f"N={n} tasks/blobs, {concurrency} at once, {os.cpu_count()} CPUs; ratio = cloud / embedded")
    print_table("TaskStore", "sqlite", sqlite_phases, "firestore-emulator", firestore_phases)
    print_table("BlobStore", "local", local_phases, "fake-gcs-server", gcs_phases)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="tasks and blobs per backend")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="operations in flight at once")
    args = parser.parse_args()
    with emulators():
        asyncio.run(main(args.n, args.concurrency))
