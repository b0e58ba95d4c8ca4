"""The whole miner as an operator runs it: --mock registration, serving, resync, shutdown, start errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import bittensor as bt
import pytest

from protocol import SummarizationSynapse
from subnet_proxy.chain import ChainError
from subnet_proxy.chain.local import LocalChain, Registration, default_chain_file
from subnet_proxy.config import build_settings
from subnet_proxy.miner import run_miner
from subnet_proxy.wallets import local_wallet
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TEXT = "The river rose overnight. Farmers moved their herds to higher ground. The old bridge held."


@pytest.mark.slow
async def test_mock_miner_registers_serves_and_stops(tmp_path: Path, engines):
    port = free_port()
    settings = build_settings(["--mock", "--netuid", "3", "--neuron.data_dir", str(tmp_path), "--wallet.name", "m1",
                               "--axon.ip", "127.0.0.1", "--axon.port", str(port), "--neuron.resync_s", "0.2"],
                              "test")
    stop = asyncio.Event()
    running = asyncio.ensure_future(run_miner(settings, stop, engines=engines))
    chain = LocalChain(default_chain_file(tmp_path, 3), netuid=3)
    miner_hotkey = local_wallet(tmp_path, "m1").hotkey.ss58_address
    for _ in range(600):  # the models load first (seconds on a busy machine)
        neuron = (await chain.snapshot()).by_hotkey(miner_hotkey) if chain.path.exists() else None
        if neuron is not None and neuron.port == port:
            break
        assert not running.done(), running
        await asyncio.sleep(0.05)
    assert neuron is not None and (neuron.ip, neuron.port) == ("127.0.0.1", port)

    # A validator that registers after the miner started is admitted once the miner resyncs.
    validator = local_wallet(tmp_path, "v1")
    await chain.register(Registration.of_wallet(validator, stake=10.0, validator_permit=True))
    dendrite = bt.Dendrite(wallet=validator)
    target = bt.AxonInfo(version=0, ip="127.0.0.1", port=port, ip_type=4, hotkey=miner_hotkey, coldkey="")
    for _ in range(50):  # refused (403) until the next resync, 0.2 s away
        answer = await dendrite.call(target, SummarizationSynapse(text=TEXT, max_words=8), timeout=10,
                                     deserialize=False)
        if answer.axon.status_code != 403:
            break
        await asyncio.sleep(0.1)
    await dendrite.aclose_session()
    assert answer.is_success, answer.axon.status_message
    assert 1 <= len(answer.summary.split()) <= 8

    stop.set()
    await asyncio.wait_for(running, 10)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.slow
def test_entry_point_names_a_missing_model_and_exits_1(tmp_path: Path):
    missing = tmp_path / "no-whisper-here"
    result = subprocess.run(
        [sys.executable, str(ROOT / "neurons" / "miner.py"), "--mock", "--neuron.data_dir", str(tmp_path),
         "--axon.port", str(free_port()), "--engine.asr_model", str(missing)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert "miner cannot start" in result.stderr and str(missing) in result.stderr


def test_entry_point_refuses_a_bad_flag_value():
    result = subprocess.run([sys.executable, str(ROOT / "neurons" / "miner.py"), "--engine.workers", "0"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "--engine.workers" in result.stderr


class _UnregisteredChain(LocalChain):
    """A chain fault on purpose: the real network's answer for a hotkey that never registered."""

    async def register(self, registration: Registration, *, uid: int | None = None) -> int:
        raise ChainError(f"hotkey {registration.hotkey} is not registered on netuid {self.netuid}; "
                         f"register it first (btcli subnet register)")


async def test_an_unregistered_hotkey_cannot_serve_on_a_real_network(tmp_path: Path):
    from subnet_proxy.miner.runner import MinerStartError, announce

    settings = build_settings(["--netuid", "9", "--neuron.data_dir", str(tmp_path)], "test")
    wallet = local_wallet(tmp_path, "m")
    chain = _UnregisteredChain(tmp_path / "chain.json", netuid=9)

    class NoAxon:
        external_ip, port, axon = "127.0.0.1", 9000, None

    with pytest.raises(MinerStartError, match="not registered on netuid 9"):
        await announce(settings, wallet, chain, NoAxon())  # type: ignore[arg-type]
