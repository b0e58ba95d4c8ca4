"""The reference miner: ``python neurons/miner.py --netuid 1 --wallet.name miner --wallet.hotkey default``.

Thin entry point: flags -> Settings -> ``subnet_proxy.miner.run_miner`` until SIGINT/SIGTERM.
``--mock`` runs against the local chain file (the miner registers itself there, so a validator
started separately finds it); a set-up problem exits with status 1 and a message naming it.
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from subnet_proxy.chain import ChainError
from subnet_proxy.config import Settings, build_settings
from subnet_proxy.engines import ModelLoadError
from subnet_proxy.miner import AxonNotReady, MinerStartError, run_miner
from subnet_proxy.telemetry import setup_logging
from subnet_proxy.wallets import WalletError

SECTIONS = ("wallet", "subtensor", "logging", "neuron", "axon", "mock", "engine", "miner")
log = logging.getLogger("subnet_proxy.miner")


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_miner(settings, stop)


def main(argv: Sequence[str] | None = None) -> int:
    settings = build_settings(argv, "Reference miner of the audio subnet: transcription, TTS, summarization.",
                              sections=SECTIONS)
    setup_logging(settings.logging)
    try:
        asyncio.run(_serve(settings))
    except (MinerStartError, AxonNotReady, ModelLoadError, WalletError, ChainError) as exc:
        log.error("miner cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
