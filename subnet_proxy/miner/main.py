"""The reference miner's entry point: ``subnet-proxy-miner``, ``python -m subnet_proxy.miner``, ``neurons/miner.py``.

Flags -> Settings (``--help`` works on a base install) -> the ``miner`` extra (one line naming it when
missing) -> ``run_miner`` until SIGINT/SIGTERM. ``--mock`` runs against the local chain file (the
miner registers itself there, so a validator started separately finds it). A miner a local-mode
validator started is tied to it (``subnet_proxy.parent``): it ends when the validator dies, however.
A set-up problem exits with status 1 and a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from subnet_proxy.entry import Neuron, run_neuron
from subnet_proxy.parent import tie_to_parent_from_env

SECTIONS = ("wallet", "subtensor", "logging", "neuron", "axon", "mock", "engine", "miner")
DESCRIPTION = "Reference miner of the audio subnet: transcription, TTS, summarization."


def _load() -> tuple[Neuron, tuple[type[BaseException], ...]]:
    from subnet_proxy.chain import ChainError
    from subnet_proxy.engines import ModelLoadError
    from subnet_proxy.miner import AxonNotReady, MinerStartError, run_miner
    from subnet_proxy.wallets import WalletError

    return run_miner, (MinerStartError, AxonNotReady, ModelLoadError, WalletError, ChainError)


def main(argv: Sequence[str] | None = None) -> int:
    tie_to_parent_from_env(os.environ)
    return run_neuron(argv, role="miner", description=DESCRIPTION, load=_load, sections=SECTIONS)
