"""The worker pool: bounded concurrency, a free event loop, withdrawn calls when a caller gives up."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from subnet_proxy.engines import WorkerPool
from tests.conftest import LoopTicks


async def test_no_more_than_workers_calls_run_at_once():
    pool = WorkerPool(2)
    lock, running, peak = threading.Lock(), [0], [0]

    def work() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    await asyncio.gather(*(pool.run(work) for _ in range(8)))
    pool.close()
    assert peak[0] == 2


async def test_the_event_loop_keeps_running_during_a_model_call():
    pool = WorkerPool(1)
    async with LoopTicks() as ticks:
        await pool.run(time.sleep, 0.3)
    pool.close()
    assert ticks.count >= 10


async def test_a_cancelled_call_that_has_not_started_never_runs():
    pool = WorkerPool(1)
    started = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        time.sleep(0.2)

    first = asyncio.ensure_future(pool.run(blocker))
    await asyncio.to_thread(started.wait)
    queued = asyncio.ensure_future(pool.run(ran.append, "late"))
    await asyncio.sleep(0)
    queued.cancel()
    await first
    await pool.run(ran.append, "after")
    pool.close()
    assert ran == ["after"]


def test_workers_must_be_positive():
    with pytest.raises(ValueError):
        WorkerPool(0)


async def test_queued_counts_calls_waiting_for_a_worker():
    pool = WorkerPool(1)
    release = threading.Event()
    calls = [asyncio.ensure_future(pool.run(release.wait, 5)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert (pool.in_use, pool.queued) == (3, 2)
    release.set()
    await asyncio.gather(*calls)
    pool.close()
    assert (pool.in_use, pool.queued) == (0, 0)


async def test_freed_heap_is_handed_back_every_so_many_calls():
    pool = WorkerPool(1, trim_every=3)
    assert [await pool.run(pow, 2, n) for n in range(7)] == [1, 2, 4, 8, 16, 32, 64]
    pool.close()
    assert pool.trims == 2  # after the 3rd and the 6th call (glibc here)


def _nice_of(tid: int) -> int:
    return int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread nice is read from Linux's /proc")
async def test_model_work_runs_nicer_than_the_event_loop_and_so_do_the_threads_it_starts() -> None:
    """The side-server's intake keeps the cores under scoring load: the workers, and the threads a model
    runtime starts from them (its compute pool), yield the CPU; the loop's own thread does not."""
    loop_nice = _nice_of(threading.get_native_id())
    pool = WorkerPool(1, nice=7)

    def worker_and_child() -> tuple[int, int]:
        child: list[int] = []
        thread = threading.Thread(target=lambda: child.append(_nice_of(threading.get_native_id())))
        thread.start()
        thread.join()
        return _nice_of(threading.get_native_id()), child[0]

    try:
        worker, child = await pool.run(worker_and_child)
    finally:
        pool.close()
    assert worker == child == min(19, loop_nice + 7)
    assert _nice_of(threading.get_native_id()) == loop_nice
    with pytest.raises(ValueError, match="nice"):
        WorkerPool(1, nice=20)
