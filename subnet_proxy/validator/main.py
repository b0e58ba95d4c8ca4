"""The validator's entry point: ``subnet-proxy-validator``, ``python -m subnet_proxy.validator``,
``neurons/proxy_validator.py``.

Flags -> Settings (``--help`` works on a base install) -> the extras this run needs (one line naming
the missing one) -> ``run.run_validator`` until SIGINT/SIGTERM. ``--mock --mock.miners 3`` runs a
whole local subnet on 127.0.0.1. A set-up problem exits with status 1 and a message naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from subnet_proxy.config import build_settings
from subnet_proxy.entry import serve_until_signal
from subnet_proxy.extras import MissingExtra, require
from subnet_proxy.telemetry import setup_logging

log = logging.getLogger("subnet_proxy.validator")
DESCRIPTION = "Proxy validator of the audio subnet: client tasks, miner scores, weights."


def main(argv: Sequence[str] | None = None) -> int:
    settings = build_settings(argv, DESCRIPTION)
    setup_logging(settings.logging)
    try:
        require(settings, "validator")
    except MissingExtra as exc:
        log.error("validator cannot run: %s", exc)
        return 1
    # the neuron's modules import the scoring engines: only now that they are known to be there
    from subnet_proxy.chain import ChainError
    from subnet_proxy.engines import ModelLoadError
    from subnet_proxy.store import StoreError
    from subnet_proxy.validator.challenges import CorpusError
    from subnet_proxy.validator.mock_miners import MockMinerError
    from subnet_proxy.validator.run import run_validator
    from subnet_proxy.wallets import WalletError

    try:
        serve_until_signal(run_validator, settings)
    except (WalletError, ChainError, StoreError, ModelLoadError, MockMinerError, CorpusError, OSError) as exc:
        log.error("validator cannot run: %s", exc)
        return 1
    return 0
