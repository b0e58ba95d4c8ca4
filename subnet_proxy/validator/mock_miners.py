"""``--mock.miners N``: reference miners as child processes on 127.0.0.1, stopped with the validator.

Each child is ``python -m subnet_proxy.miner --mock`` (the installed package, so a wheel install
runs it too) on its own free port with its own local wallet; it registers itself in the same local
chain file, so the validator finds it through the metagraph like any other miner. Each child is
tied to this process (``subnet_proxy.parent``): it ends when the validator dies, even by SIGKILL.
Output goes to ``DATA_DIR/logs/mock-miner-I.log``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys

from subnet_proxy.chain import Chain
from subnet_proxy.config import Settings
from subnet_proxy.parent import PARENT_PID_ENV

log = logging.getLogger(__name__)

MINER_MODULE = "subnet_proxy.miner"
#: seconds a miner may take to load its models and register.
READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0


class MockMinerError(RuntimeError):
    """A mock miner exited or never registered; the message points at its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def miner_argv(settings: Settings, index: int, port: int) -> list[str]:
    """The command line of mock miner ``index``: the validator's local chain, data dir and netuid."""
    argv = [
        sys.executable, "-m", MINER_MODULE, "--mock", "--netuid", str(settings.netuid),
        "--neuron.data_dir", str(settings.data_dir), "--wallet.name", f"mock-miner-{index}",
        "--wallet.hotkey", "default", "--axon.ip", "127.0.0.1", "--axon.port", str(port),
        "--axon.external_ip", "127.0.0.1", "--axon.external_port", str(port),
        "--mock.block_time_s", str(settings.mock.block_time_s), "--engine.workers", "1",
    ]
    if settings.mock.chain_file:
        argv += ["--mock.chain_file", settings.mock.chain_file]
    if settings.logging.debug:
        argv.append("--logging.debug")
    return argv


class MockMiners:
    """The child miner processes of one validator run."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.log_dir = settings.data_dir / "logs"

    def start(self) -> None:
        """Spawn the children. Call it from the thread that lives as long as the validator (the event
        loop's): the kernel's parent-death signal follows the thread that forked the child."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", PARENT_PID_ENV: str(os.getpid())}
        for index in range(self.count):
            port = _free_port()
            with open(self.log_dir / f"mock-miner-{index}.log", "ab") as out:
                proc = subprocess.Popen(miner_argv(self.settings, index, port), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            self.procs.append(proc)
            self.ports.append(port)
        log.info("started %d mock miner(s) on ports %s (logs in %s)", self.count, self.ports, self.log_dir)

    async def wait_ready(self, chain: Chain, *, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every child has registered its port in the local chain; raise if one dies first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    raise MockMinerError(f"mock miner {index} exited with status {proc.returncode}; "
                                         f"see {self.log_dir / f'mock-miner-{index}.log'}")
            snapshot = await chain.snapshot()
            announced = {n.port for n in snapshot.neurons if n.ip == "127.0.0.1"}
            if all(port in announced for port in self.ports):
                return
            if loop.time() > deadline:
                raise MockMinerError(f"mock miners not registered after {timeout:.0f} s; see {self.log_dir}")
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        """SIGTERM every child, then SIGKILL what is still alive after the grace period."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_S
        while any(p.poll() is None for p in self.procs) and loop.time() < deadline:
            await asyncio.sleep(0.1)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.procs.clear()
