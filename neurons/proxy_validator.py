"""The proxy validator: ``python neurons/proxy_validator.py --netuid 1 --wallet.name validator ...``.

Thin entry point: flags -> Settings -> ``subnet_proxy.validator.run.run_validator`` (the loops and
the embedded side-server) until SIGINT/SIGTERM. ``--mock --mock.miners 3`` runs a whole local
subnet on 127.0.0.1. A set-up problem exits with status 1 and a message naming it.
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from subnet_proxy.chain import ChainError
from subnet_proxy.config import Settings, build_settings
from subnet_proxy.engines import ModelLoadError
from subnet_proxy.kinds.challenges import CorpusError
from subnet_proxy.store import StoreError
from subnet_proxy.telemetry import setup_logging
from subnet_proxy.validator.mock_miners import MockMinerError
from subnet_proxy.validator.run import run_validator
from subnet_proxy.wallets import WalletError

log = logging.getLogger("subnet_proxy.validator")


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_validator(settings, stop)


def main(argv: Sequence[str] | None = None) -> int:
    settings = build_settings(argv, "Proxy validator of the audio subnet: client tasks, miner scores, weights.")
    setup_logging(settings.logging)
    try:
        asyncio.run(_serve(settings))
    except (WalletError, ChainError, StoreError, ModelLoadError, MockMinerError, CorpusError, OSError) as exc:
        log.error("validator cannot run: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
