"""A local-mode validator killed with SIGKILL leaves no mock miner behind (they are tied to it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
READY_S = 240.0


def _miner_pids(data_dir: Path) -> list[int]:
    """Mock miners of this data dir, by their command line."""
    out = subprocess.run(["pgrep", "-f", f"subnet_proxy.miner .*{data_dir}"], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def test_sigkill_of_the_validator_ends_its_miners(tmp_path: Path) -> None:
    log_path = tmp_path / "validator.log"
    argv = [sys.executable, "-m", "subnet_proxy.validator", "--mock", "--mock.miners", "1", "--neuron.data_dir",
            str(tmp_path), "--proxy.host", "127.0.0.1", "--proxy.port", str(free_port()), "--wandb.off",
            "--mock.block_time_s", "1", "--neuron.synthetic_rate", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(log_path, "wb") as log:
        validator = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + READY_S
        while "dev API key" not in log_path.read_text(errors="replace"):  # printed once the miner has registered
            assert validator.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the local subnet never came up"
            time.sleep(0.5)
        miners = _miner_pids(tmp_path)
        assert len(miners) == 1

        validator.send_signal(signal.SIGKILL)
        assert validator.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 30  # SIGTERM: the miner stops its axon gracefully
        while _miner_pids(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _miner_pids(tmp_path) == [], "a mock miner outlived its SIGKILLed validator"
    finally:
        if validator.poll() is None:
            validator.kill()
            validator.wait()
        for pid in _miner_pids(tmp_path):
            os.kill(pid, signal.SIGKILL)
