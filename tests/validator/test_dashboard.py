"""The live dashboard in real headless Chromium against a running local subnet (validator, axon, side-server)."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from subnet_proxy.keys import Role
from subnet_proxy.monitoring.metered import MeteredStore
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.tasks import TaskStatus
from tests.browser import Chromium
from tests.validator.test_forward import GOOD, SOURCE, summarizer

VIEWER = "viewer-key-0123456789abcdef"
CLIENT = "client-key-0123456789abcdef"
#: where screenshots are kept after the run (the test command's artifacts).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


@asynccontextmanager
async def local_subnet(harness):
    """A validator with two miners (one answers well, one never validly) and its side-server; yields its URL."""
    metrics = TaskMetrics()
    harness.store = MeteredStore(harness.store, metrics)
    await harness.add_miner("good", summarizer(GOOD))
    await harness.add_miner("silent", summarizer(None))
    validator = await harness.validator(metrics=metrics)
    async with harness.served(validator) as (url, keys):
        await keys.seed(VIEWER, role=Role.VIEWER, name="viewer")
        await keys.seed(CLIENT, role=Role.CLIENT, name="client")
        yield url


async def submit(session: aiohttp.ClientSession, url: str, text: str = SOURCE) -> str:
    async with session.post(url + "/api/v1/summarization", json={"text": text},
                            headers={"Authorization": f"Bearer {CLIENT}"}) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["task_id"])


async def test_the_dashboard_is_live_matches_the_api_and_fits_a_phone(harness) -> None:
    async with local_subnet(harness) as url, aiohttp.ClientSession() as session:
        for _ in range(2):
            await harness.wait_status(await submit(session, url), TaskStatus.APPROVED)
        async with Chromium() as browser:
            await browser.goto(url + "/dashboard")
            assert await browser.evaluate("document.body.dataset.state") == "login"
            await browser.evaluate(f"document.getElementById('key').value = {VIEWER!r}; "
                                   "document.getElementById('open').click()")
            await browser.wait_for("document.body.dataset.state === 'live'")
            assert VIEWER not in await browser.evaluate("location.href")

            # the numbers on the page are the JSON API's
            async with session.get(url + "/api/v1/health") as resp:
                health = await resp.json()
            async with session.get(url + "/api/v1/miners") as resp:
                miners = (await resp.json())["miners"]
            shown = await browser.evaluate("Object.fromEntries([...document.querySelectorAll('[id^=count-]')]"
                                           ".map(e => [e.id.slice(6), +e.textContent]))")
            assert shown == {status: health["tasks"].get(status, 0) for status in shown} and shown["approved"] == 2
            rows = await browser.evaluate("[...document.querySelectorAll('#miners tr')].map(r => +r.dataset.uid)")
            assert sorted(rows) == sorted(m["uid"] for m in miners) and len(rows) == 3  # two miners, the validator
            ema = await browser.evaluate("[...document.querySelectorAll('#miners tr')]"
                                         ".map(r => r.children[2].textContent)")
            assert sorted(ema) == sorted(f"{m['ema_score']:.3f}" for m in miners)
            kind_row = await browser.evaluate("document.querySelector('#kinds tr[data-kind=summarization]').innerText")
            assert kind_row.split("\t")[1:3] == ["2", "2"]  # submitted, approved in the last hour
            loops = await browser.evaluate("[...document.querySelectorAll('#loops tr')].map(r => r.dataset.loop)")
            assert set(loops) >= {"resync", "weights", "dispatch", "scoring"}

            # sortable: EMA descending puts the good miner first
            await browser.evaluate("document.querySelector('th[data-sort=ema_score]').click()")
            ordered = await browser.evaluate(
                "[...document.querySelectorAll('#miners tr')].map(r => +r.children[2].textContent)")
            assert ordered == sorted(ordered, reverse=True) and ordered[0] > ordered[-1]

            # a new task appears without a reload
            await browser.evaluate("window.__sameDocument = true")
            task_id = await submit(session, url)
            await browser.wait_for(f"!!document.querySelector('#tasks tr[data-task=\"{task_id[:8]}\"]')", timeout=10)
            assert await browser.evaluate("window.__sameDocument === true && "
                                          "performance.getEntriesByType('navigation').length === 1")
            await harness.wait_status(task_id, TaskStatus.APPROVED)
            await browser.wait_for("+document.getElementById('count-approved').textContent === 3", timeout=15)
            shot = await browser.screenshot(ARTIFACTS / "dashboard.png")

            # a phone-width screen: one column, nothing wider than the screen but the tables' own scrollers
            await browser.resize(390, 844, mobile=True)
            await asyncio.sleep(0.3)
            assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
            await browser.screenshot(ARTIFACTS / "dashboard-phone.png")
            assert browser.errors == []
        assert shot.stat().st_size > 20_000


async def test_the_dashboard_needs_a_viewer_or_admin_key_and_a_viewer_only_reads(harness) -> None:
    async with local_subnet(harness) as url, aiohttp.ClientSession() as session:
        async with session.get(url + "/dashboard") as resp:  # the page holds no data
            assert resp.status == 200 and "connect-src 'self'" in resp.headers["Content-Security-Policy"]
        async with session.get(url + "/api/v1/dashboard") as resp:
            assert resp.status == 401
        async with session.get(url + "/api/v1/dashboard", headers={"Authorization": f"Bearer {CLIENT}"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "viewer_only"
        async with session.post(url + "/api/v1/summarization", json={"text": SOURCE},
                                headers={"Authorization": f"Bearer {VIEWER}"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "read_only_key"
        async with session.get(url + "/api/v1/dashboard", headers={"Authorization": f"Bearer {VIEWER}"}) as resp:
            state = await resp.json()
        assert resp.status == 200 and state["status"] == "ok" and len(state["miners"]) == 3

        async with Chromium() as browser:  # a client key is refused on the page, with the reason
            await browser.goto(url + "/dashboard")
            await browser.evaluate(f"document.getElementById('key').value = {CLIENT!r}; "
                                   "document.getElementById('open').click()")
            message = await browser.wait_for("document.getElementById('login-error').textContent")
            assert message == "this endpoint needs a viewer or admin key"
