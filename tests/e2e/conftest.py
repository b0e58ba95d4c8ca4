"""A local subnet in processes: the validator neuron, reference miners and bad miners on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.config import MockSettings, NeuronSettings, Settings
from subnet_proxy.tasks import TERMINAL_STATUSES
from subnet_proxy.validator.mock_miners import miner_argv
from subnet_proxy.validator.run import MOCK_VALIDATOR_STAKE
from subnet_proxy.wallets import local_wallet
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
NETUID = 7
API_KEY = "spx_e2e_test_key_0123456789abcdef"
READY_S = 240.0
#: statuses a task never leaves: waiting on for another one is waiting for nothing.
TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


class Subnet:
    """Processes of one local subnet sharing a data dir and a local chain file."""

    def __init__(self, root: Path, *, validator: bool = True) -> None:
        """``validator``: register the one validator of ``start_validator`` (its wallet under ``root``)."""
        self.root = root
        self.chain_file = root / "chain.json"
        self.chain = LocalChain(self.chain_file, netuid=NETUID, block_time_s=1.0)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.validator: subprocess.Popen[bytes] | None = None
        self.miners: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        self.validator_hotkey = self.register_validator(root, MOCK_VALIDATOR_STAKE) if validator else None

    def register_validator(self, data_dir: Path, stake: float) -> str:
        """Register the validator whose data dir is ``data_dir`` before any miner starts, so every miner's
        first metagraph knows it (a validator registering itself later is refused until they resync)."""
        wallet = local_wallet(data_dir, "default")
        self.chain.register_sync(Registration.of_wallet(wallet, stake=stake, validator_permit=True))
        return str(wallet.hotkey.ss58_address)

    def settings(self) -> Settings:
        return Settings(netuid=NETUID, neuron=NeuronSettings(data_dir=str(self.root), resync_s=2.0),
                        mock=MockSettings(enabled=True, block_time_s=1.0, chain_file=str(self.chain_file)))

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                cwd=ROOT)
        log.close()
        return proc

    def start_reference_miner(self, index: int) -> int:
        port = free_port()
        argv = miner_argv(self.settings(), index, port) + ["--neuron.resync_s", "2"]
        self.miners[f"ref{index}"] = self._spawn(f"ref{index}", argv)
        return port

    def start_bad_miner(self, index: int) -> int:
        port = free_port()
        argv = [sys.executable, "-m", "tests.e2e.bad_miner", "--chain-file", str(self.chain_file), "--netuid",
                str(NETUID), "--data-dir", str(self.root), "--name", f"bad{index}", "--port", str(port)]
        self.miners[f"bad{index}"] = self._spawn(f"bad{index}", argv)
        return port

    def start_validator(self, *extra: str) -> None:
        argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), "--mock", "--netuid", str(NETUID),
                "--neuron.data_dir", str(self.root), "--mock.chain_file", str(self.chain_file),
                "--mock.block_time_s", "1", "--proxy.host", "127.0.0.1", "--proxy.port", str(self.port),
                "--proxy.api_key", API_KEY, "--neuron.sample_size", "4", "--neuron.synthetic_rate", "0",
                "--neuron.resync_s", "2", "--neuron.lease_s", "6", "--neuron.timeout", "20",
                "--neuron.epoch_length", "8", "--neuron.moving_average_alpha", "0.3", "--neuron.concurrency", "4",
                "--wandb.off", *extra]
        self.validator = self._spawn("validator", argv)

    def stop_validator(self, sig: int = signal.SIGTERM) -> int:
        assert self.validator is not None
        self.validator.send_signal(sig)
        code = self.validator.wait(timeout=60)
        self.validator = None
        return code

    def wait_serving(self, ports: list[int], timeout: float = READY_S) -> dict[int, int]:
        """port -> uid once every port is announced in the chain; fails fast if a process died."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.miners.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}): {self.tail(name)}")
            uids = {n.port: n.uid for n in self.chain.snapshot_sync().neurons}
            if all(p in uids for p in ports):
                return {p: uids[p] for p in ports}
            if time.monotonic() > deadline:
                raise TimeoutError(f"ports {ports} not announced; chain has {uids}")
            time.sleep(0.5)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.root / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        if self.validator is not None and self.validator.poll() is None:
            self.stop_validator(signal.SIGTERM)
        for proc in self.miners.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.miners.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Client:
    """The HTTP client a user of the side-server would write."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str = API_KEY) -> None:
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    async def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = READY_S) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"validator exited with {proc.returncode}")
            try:
                async with self.session.get(f"{self.url}/api/v1/miners") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError("validator never served")

    async def submit(self, kind: str, **payload: Any) -> str:
        async with self.session.post(f"{self.url}/api/v1/{kind}", json=payload, headers=self.headers) as resp:
            body = await resp.json()
            assert resp.status == 202, body
            return str(body["task_id"])

    async def submit_audio(self, data: bytes) -> str:
        form = aiohttp.FormData()
        form.add_field("audio", data, filename="speech.flac")
        async with self.session.post(f"{self.url}/api/v1/transcription", data=form, headers=self.headers) as resp:
            body = await resp.json()
            assert resp.status == 202, body
            return str(body["task_id"])

    async def status(self, task_id: str) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/api/v1/task/{task_id}/status", headers=self.headers) as resp:
            return dict(await resp.json())

    async def wait_status(self, task_id: str, *wanted: str, timeout: float = 120.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                status = await self.status(task_id)
            except aiohttp.ClientConnectionError:
                status = {"status": "unreachable"}
            if status["status"] in wanted:
                return status
            if status["status"] in TERMINAL:
                raise AssertionError(f"task {task_id} ended {status['status']}, not {'/'.join(wanted)}: {status}")
            if loop.time() > deadline:
                raise TimeoutError(f"task {task_id}: {status}")
            await asyncio.sleep(0.25)

    async def audio_result(self, task_id: str) -> bytes:
        async with self.session.get(f"{self.url}/api/v1/task/{task_id}/result", headers=self.headers) as resp:
            assert resp.status == 200 and resp.content_type.startswith("audio/"), resp.content_type
            return await resp.read()

    async def miners(self) -> dict[int, dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/miners") as resp:
            return {m["uid"]: m for m in (await resp.json())["miners"]}


@pytest.fixture(scope="module")
def subnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subnet]:
    net = Subnet(tmp_path_factory.mktemp("subnet"))
    try:
        yield net
    finally:
        net.stop_all()
