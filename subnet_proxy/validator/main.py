"""The validator's entry point: ``subnet-proxy-validator``, ``python -m subnet_proxy.validator``,
``neurons/proxy_validator.py``.

Flags -> Settings (``--help`` works on a base install) -> the extras this run needs (one line naming
the missing one) -> ``run.run_validator`` until SIGINT/SIGTERM. ``--mock --mock.miners 3`` runs a
whole local subnet on 127.0.0.1. A set-up problem exits with status 1 and a message naming it.
"""

from __future__ import annotations

from collections.abc import Sequence

from subnet_proxy.entry import Neuron, run_neuron

DESCRIPTION = "Proxy validator of the audio subnet: client tasks, miner scores, weights."


def _load() -> tuple[Neuron, tuple[type[BaseException], ...]]:
    """The validator's modules import the scoring engines: imported once the extra is known to be there."""
    from subnet_proxy.chain import ChainError
    from subnet_proxy.engines import ModelLoadError
    from subnet_proxy.kinds.challenges import CorpusError
    from subnet_proxy.store import StoreError
    from subnet_proxy.validator.mock_miners import MockMinerError
    from subnet_proxy.validator.run import run_validator
    from subnet_proxy.wallets import WalletError

    return run_validator, (WalletError, ChainError, StoreError, ModelLoadError, MockMinerError, CorpusError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    return run_neuron(argv, role="validator", description=DESCRIPTION, load=_load)
