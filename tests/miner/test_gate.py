"""The priority gate: bounded slots, highest priority served next, abandoned waiters leave cleanly."""

from __future__ import annotations

import asyncio

import pytest

from subnet_proxy.miner.gate import PriorityGate


async def test_free_slots_are_taken_at_once_and_then_callers_wait():
    gate = PriorityGate(2)
    await gate.acquire(0.0)
    await gate.acquire(0.0)
    third = asyncio.ensure_future(gate.acquire(0.0))
    await asyncio.sleep(0.01)
    assert not third.done() and gate.waiting == 1
    gate.release()
    await asyncio.wait_for(third, 1.0)


async def test_a_freed_slot_goes_to_the_highest_priority_then_first_come():
    gate = PriorityGate(1)
    await gate.acquire(0.0)
    served: list[str] = []

    async def caller(name: str, priority: float) -> None:
        await gate.acquire(priority)
        served.append(name)
        gate.release()

    tasks = []
    for name, priority in [("low", 1.0), ("high", 100.0), ("mid-a", 10.0), ("mid-b", 10.0)]:
        tasks.append(asyncio.ensure_future(caller(name, priority)))
        await asyncio.sleep(0)  # arrival order is the list order
    gate.release()
    await asyncio.gather(*tasks)
    assert served == ["high", "mid-a", "mid-b", "low"]


async def test_a_waiter_that_gives_up_never_takes_a_slot():
    gate = PriorityGate(1)
    await gate.acquire(0.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gate.acquire(50.0), 0.05)
    assert gate.waiting == 0
    gate.release()
    await asyncio.wait_for(gate.acquire(0.0), 0.5)  # the slot came back, not lost to the quitter


def test_slots_must_be_positive():
    with pytest.raises(ValueError):
        PriorityGate(0)
