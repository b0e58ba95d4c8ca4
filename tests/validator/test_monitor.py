"""Health that knows the loops: a real validator (embedded store, local chain) behind a real side-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from subnet_proxy.config import MonitorSettings
from subnet_proxy.tasks import Task, TaskInput, TaskKind
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.monitor import ValidatorMonitor
from subnet_proxy.validator.neuron import Validator

QUICK = MonitorSettings(resync_stale_s=0.6, weights_stale_epochs=2, dispatch_stale_s=0.6, scoring_stale_s=0.6)


@asynccontextmanager
async def served(harness: Any, validator: Validator) -> AsyncIterator[str]:
    async with harness.served(validator) as (url, _):
        yield url


async def get(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def test_a_running_validator_is_healthy_and_its_probes_answer(harness) -> None:
    validator = await harness.validator(monitor=QUICK, resync_s=0.2)
    async with served(harness, validator) as url:
        await asyncio.sleep(1.5)  # idle for longer than every limit: quiet is not stalled
        status, health = await get(url + "/api/v1/health")
        assert status == 200, health
        assert set(health["loops"]) >= {"resync", "weights", "dispatch", "scoring", "retention", "recovery"}
        assert all(c["ok"] for c in health["loops"].values()) and health["reasons"] == []
        assert health["loops"]["weights"]["detail"]["registered"] is True
        assert health["loops"]["weights"]["detail"]["last_attempt"]["block"] > 0
        assert health["loops"]["resync"]["detail"]["age_s"] < 0.6
        assert await get(url + "/api/v1/health/live") == (200, {"status": "ok", "reason": None})
        assert await get(url + "/api/v1/health/ready") == (200, {"status": "ok", "reason": None})


async def test_a_stalled_forward_loop_turns_health_503_with_the_reason(harness) -> None:
    validator = await harness.validator(monitor=QUICK, resync_s=0.2)
    async with served(harness, validator) as url:
        await validator.forward.stop()  # intake stuck: tasks arrive, nothing takes them
        await harness.store.create_task(Task(kind=TaskKind.SUMMARIZATION, owner="client",
                                             input=TaskInput(text="The river rose overnight. " * 3)))
        await asyncio.sleep(0.8)
        status, health = await get(url + "/api/v1/health")
        assert status == 503
        dispatch = health["loops"]["dispatch"]
        assert dispatch["ok"] is False and dispatch["detail"]["pending"] == 1
        assert "1 task(s) pending and none dispatched" in dispatch["error"]
        assert health["reasons"] == [dispatch["error"]] and health["status"] == "degraded"
        assert await get(url + "/api/v1/health/ready") == (503, {"status": "unavailable",
                                                                "reason": "the forward loop is not running"})
        assert (await get(url + "/api/v1/health/live"))[0] == 200


async def test_stalled_resync_and_weights_are_named(harness) -> None:
    validator = await harness.validator(monitor=QUICK, resync_s=0.2)
    async with served(harness, validator) as url:
        await validator.weights.stop()  # epoch_length 1, blocks of 0.5 s: 2 epochs pass in about 1.5 s
        await asyncio.sleep(2.5)
        status, health = await get(url + "/api/v1/health")
        assert status == 503, health["loops"]["weights"]
        weights = health["loops"]["weights"]
        assert weights["ok"] is False and weights["error"].startswith("weights not set for")
        assert weights["detail"]["blocks_since_set"] > 2
        assert health["loops"]["resync"]["ok"] is True
        await validator.resync.stop()
        await asyncio.sleep(0.8)
        status, health = await get(url + "/api/v1/health")
        assert health["loops"]["resync"]["ok"] is False
        assert health["loops"]["resync"]["error"].startswith("no metagraph resync for")
        assert len(health["reasons"]) == 2


class Failing(LoopRunner):
    name = "failing"

    async def run_step(self) -> None:
        raise OSError("disk full")


async def test_a_loop_failing_in_a_row_is_named_with_its_error_class(harness) -> None:
    validator = await harness.validator()
    failing = Failing(interval_s=0.1)
    monitor = ValidatorMonitor(validator.settings.model_copy(update={"monitor": MonitorSettings(loop_failures=1)}),
                               forward=validator.forward, resync=validator.resync, setter=validator.weights.setter,
                               background=[failing], metagraph=validator.metagraph, own_hotkey=validator.hotkey)
    assert monitor.loops({})["failing"].ok
    failing.start()
    try:
        await asyncio.sleep(0.3)
        check = monitor.loops({})["failing"]
        assert not check.ok and check.reason == "failing: 1 steps failed in a row (last: OSError)"
    finally:
        await failing.stop()
