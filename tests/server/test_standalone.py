"""``python -m subnet_proxy.server``: an ingestion-only instance under --mock starts, serves, and stops on SIGTERM,
with one access-log line per request of a concurrent burst written out by then."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

KEY = "standalone-key-0123456789"
#: concurrent submits just before SIGTERM: each must leave its access-log line (written off the event loop).
BURST = 200


@pytest.mark.slow
async def test_standalone_server_runs_and_stops_gracefully(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "subnet_proxy.server", "--mock", "--neuron.data_dir", str(tmp_path),
        "--proxy.host", "127.0.0.1", "--proxy.port", "0", "--proxy.api_key", KEY, "--wandb.off",
        "--proxy.rate_per_s", "10000", "--proxy.burst", "10000", "--proxy.max_in_flight", "1000",
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

            async def submit(i: int) -> str:
                async with session.post(url + "/api/v1/summarization", json={"text": f"burst {i}"},
                                        headers={"Authorization": f"Bearer {KEY}"}) as resp:
                    assert resp.status == 202
                    return resp.headers["X-Request-ID"]

            burst = set(await asyncio.gather(*(submit(i) for i in range(BURST))))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    access = [json.loads(line.split(": ", 1)[1]) for line in err.decode().splitlines()
              if " subnet_proxy.access: " in line]
    logged = [entry["request_id"] for entry in access]
    assert len(burst) == BURST and burst <= set(logged)  # every request of the burst, once
    assert len(logged) == len(set(logged)) == BURST + 3 and all(entry["ms"] >= 0 for entry in access)
    assert (tmp_path / "tasks.db").exists() and (tmp_path / "keys.db").exists()
