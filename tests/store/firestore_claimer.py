"""A separate claimer process for the multi-process Firestore tests (its own store client).

    python -m tests.store.firestore_claimer PROJECT NAME MODE LEASE_S

Prints ``ready`` and waits for a line on stdin (so several processes start claiming together), then:

* ``drain``: claims batches of 10 until the queue is empty; prints one JSON list of the ids it took
* ``hold``:  claims one batch of up to 50, prints its ids, and then sleeps (the test kills it)
* ``create``: creates one task and prints its id (another process's create, for the listener test)
"""

from __future__ import annotations

import asyncio
import json
import sys

from subnet_proxy.store.firestore import FirestoreTaskStore
from tests.store.emulators import firestore_settings
from tests.store.factories import make_task


async def run(project: str, name: str, mode: str, lease_s: float) -> None:
    store = FirestoreTaskStore(firestore_settings(project))
    await store.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    try:
        if mode == "drain":
            taken: list[str] = []
            while batch := await store.claim_tasks(name, limit=10, lease_s=lease_s):
                taken += [t.task_id for t in batch]
            print(json.dumps(taken), flush=True)
        elif mode == "hold":
            batch = await store.claim_tasks(name, limit=50, lease_s=lease_s)
            print(json.dumps([t.task_id for t in batch]), flush=True)
            await asyncio.sleep(3600)
        elif mode == "create":
            task, _ = await store.create_task(make_task(0, owner=name))
            print(json.dumps([task.task_id]), flush=True)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        await store.close()


if __name__ == "__main__":
    project_arg, name_arg, mode_arg, lease_arg = sys.argv[1:5]
    asyncio.run(run(project_arg, name_arg, mode_arg, float(lease_arg)))
