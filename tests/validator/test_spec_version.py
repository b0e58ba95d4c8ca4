"""A validator whose spec version is below the subnet's weights version refuses to start, saying why."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from subnet_proxy.chain import ChainError
from subnet_proxy.chain.local import LocalChain, Registration, default_chain_file
from subnet_proxy.validator.run import OutdatedBuild, check_spec_version
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


class UnreadableChain(LocalChain):
    async def weights_version(self) -> int:
        raise ChainError("chain weights version timed out after 30 s")


async def test_the_check_passes_at_or_above_and_refuses_below(tmp_path: Path) -> None:
    chain = LocalChain(tmp_path / "c.json", netuid=3, weights_version=1100)
    chain.register_sync(Registration(hotkey="m", coldkey="ck", port=1))  # writes the file
    await check_spec_version(chain, 3, spec_version=1100)
    await check_spec_version(chain, 3, spec_version=2000)
    with pytest.raises(OutdatedBuild, match=r"spec version 1099 .* below the weights version 1100 of netuid 3"):
        await check_spec_version(chain, 3, spec_version=1099)


async def test_an_unreadable_chain_is_a_warning_not_a_refusal(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        await check_spec_version(UnreadableChain(tmp_path / "c.json", netuid=3), 3, spec_version=1)
    assert "cannot read the subnet's weights version" in caplog.text


def test_the_validator_entry_point_exits_1_naming_both_versions(tmp_path: Path) -> None:
    chain = LocalChain(default_chain_file(tmp_path, 1), netuid=1, weights_version=10**6)
    chain.register_sync(Registration(hotkey="m", coldkey="ck", port=1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "subnet_proxy.validator", "--mock", "--neuron.data_dir", str(tmp_path),
                           "--proxy.port", str(free_port()), "--wandb.off"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "validator cannot start: this build's spec version" in done.stderr
    assert "below the weights version 1000000 of netuid 1" in done.stderr and "Traceback" not in done.stderr
