"""run_validator under --mock: the local subnet in one call (child reference miner, side-server, dev key)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from subnet_proxy.config import build_settings
from subnet_proxy.validator.run import run_validator

pytestmark = pytest.mark.slow

SOURCE = ("The river rose overnight after three days of rain. Farmers moved their herds to higher ground "
          "before dawn. The village council opened the school gym as a shelter for the night.")


async def test_mock_run_serves_a_client_task_end_to_end_and_stops_its_miners(tmp_path: Path):
    settings = build_settings(["--mock", "--mock.miners", "1", "--neuron.data_dir", str(tmp_path), "--proxy.host",
                               "127.0.0.1", "--proxy.port", "0", "--neuron.synthetic_rate", "0", "--wandb.off",
                               "--mock.block_time_s", "1"], "test")
    lines: list[str] = []
    stop = asyncio.Event()
    runner = asyncio.create_task(run_validator(settings, stop, say=lines.append))
    try:
        for _ in range(600):
            if any("dev API key" in line for line in lines) or runner.done():
                break
            await asyncio.sleep(0.2)
        banner = "\n".join(lines)
        key = re.search(r"dev API key: (\S+)", banner)
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
        assert key and url, banner
        assert (tmp_path / "dev_api_key").read_text().strip() == key.group(1)
        assert f"curl -s -H 'Authorization: Bearer {key.group(1)}'" in banner

        headers = {"Authorization": f"Bearer {key.group(1)}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url.group(1)}/api/v1/summarization", json={"text": SOURCE},
                                    headers=headers) as resp:
                assert resp.status == 202
                task_id = (await resp.json())["task_id"]
            async with session.get(f"{url.group(1)}/api/v1/task/{task_id}/result?wait=60", headers=headers) as resp:
                first = await resp.json()
            assert first["kind"] == "summarization" and "river" in first["text"].lower()
            for _ in range(100):
                async with session.get(f"{url.group(1)}/api/v1/task/{task_id}/status", headers=headers) as resp:
                    status = await resp.json()
                if status["status"] == "approved":
                    break
                await asyncio.sleep(0.2)
            assert status["status"] == "approved"
    finally:
        stop.set()
        await asyncio.wait_for(runner, 60)
    children = await asyncio.create_subprocess_exec("pgrep", "-f", str(tmp_path), stdout=asyncio.subprocess.PIPE)
    out, _ = await children.communicate()
    assert out.strip() == b"", "a mock miner outlived the validator"
    assert (tmp_path / "scores" / "netuid-1.json").exists()
