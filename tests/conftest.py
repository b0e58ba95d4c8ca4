"""Shared fixtures: loopback-only bittensor, throwaway wallets, real encoded audio."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from bittensor_wallet import Wallet

from protocol import encode_audio
from subnet_proxy.offline import pin_external_ip

# No test may look anything up online: pin bittensor's external IP before any Dendrite/Axon exists.
pin_external_ip("127.0.0.1")


def make_wallet(root: Path, name: str, hotkey: str = "default") -> Wallet:
    wallet = Wallet(name=name, hotkey=hotkey, path=str(root))
    wallet.create_if_non_existent(coldkey_use_password=False, hotkey_use_password=False, suppress=True)
    return wallet


@pytest.fixture
def wallet_factory(tmp_path: Path):
    def factory(name: str, hotkey: str = "default") -> Wallet:
        return make_wallet(tmp_path / "wallets", name, hotkey)

    return factory


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    """A script under scripts/ imported as a module, so tests call its main() in-process."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LoopTicks:
    """Counts 10 ms event-loop ticks while the block runs: proof that a call left the loop free."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "LoopTicks":
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.count += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tone(seconds: float = 1.0, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def wav_bytes() -> bytes:
    return encode_audio(tone(), 16_000, "wav")


@pytest.fixture(scope="session")
def engines():
    """The real engines on the shipped models, shared by the whole session; each model loads on first use."""
    from subnet_proxy.config import EngineSettings
    from subnet_proxy.engines import build_engines

    built = build_engines(EngineSettings())
    yield built
    built.close()


@pytest.fixture(scope="session")
def scoring_engines(engines):
    """The validator's scoring models (the session engines plus MiniLM and Silero VAD), loaded once."""
    from subnet_proxy.config import EngineSettings
    from subnet_proxy.rewards import ScoringEngines

    return ScoringEngines.build(engines, EngineSettings())
