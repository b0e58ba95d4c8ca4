"""``python -m subnet_proxy.server``: an ingestion-only instance under --mock starts, serves, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

KEY = "standalone-key-0123456789"


@pytest.mark.slow
async def test_standalone_server_runs_and_stops_gracefully(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "subnet_proxy.server", "--mock", "--neuron.data_dir", str(tmp_path),
        "--proxy.host", "127.0.0.1", "--proxy.port", "0", "--proxy.api_key", KEY, "--wandb.off",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        url = match.group(0)
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/api/v1/health") as resp:
                health = await resp.json()
            assert resp.status == 200 and health["checks"]["chain"]["ok"]  # the local chain is followed
            async with session.post(url + "/api/v1/summarization", json={"text": "hello there"},
                                    headers={"Authorization": f"Bearer {KEY}"}) as resp:
                assert resp.status == 202
            async with session.get(url + "/api/v1/validator/tasks") as resp:
                assert resp.status == 401 and (await resp.json())["error"]["code"] == "missing_signature"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert (tmp_path / "tasks.db").exists() and (tmp_path / "keys.db").exists()
