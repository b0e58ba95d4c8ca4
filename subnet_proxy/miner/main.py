"""The reference miner's entry point: ``subnet-proxy-miner``, ``python -m subnet_proxy.miner``, ``neurons/miner.py``.

Flags -> Settings (``--help`` works on a base install) -> the ``miner`` extra (one line naming it when
missing) -> ``run_miner`` until SIGINT/SIGTERM. ``--mock`` runs against the local chain file (the
miner registers itself there, so a validator started separately finds it). A miner a local-mode
validator started is tied to it (``subnet_proxy.parent``): it ends when the validator dies, however.
A set-up problem exits with status 1 and a message naming it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from subnet_proxy.config import build_settings
from subnet_proxy.entry import serve_until_signal
from subnet_proxy.extras import MissingExtra, require
from subnet_proxy.parent import tie_to_parent_from_env
from subnet_proxy.telemetry import setup_logging

SECTIONS = ("wallet", "subtensor", "logging", "neuron", "axon", "mock", "engine", "miner")
DESCRIPTION = "Reference miner of the audio subnet: transcription, TTS, summarization."
log = logging.getLogger("subnet_proxy.miner")


def main(argv: Sequence[str] | None = None) -> int:
    tie_to_parent_from_env(os.environ)
    settings = build_settings(argv, DESCRIPTION, sections=SECTIONS)
    setup_logging(settings.logging)
    try:
        require(settings, "miner")
    except MissingExtra as exc:
        log.error("miner cannot start: %s", exc)
        return 1
    from subnet_proxy.chain import ChainError
    from subnet_proxy.engines import ModelLoadError
    from subnet_proxy.miner import AxonNotReady, MinerStartError, run_miner
    from subnet_proxy.wallets import WalletError

    try:
        serve_until_signal(run_miner, settings)
    except (MinerStartError, AxonNotReady, ModelLoadError, WalletError, ChainError) as exc:
        log.error("miner cannot start: %s", exc)
        return 1
    return 0
