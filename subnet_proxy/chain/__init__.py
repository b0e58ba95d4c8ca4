"""The chain boundary: the ``Chain`` interface (``base``), the local chain (``local``) used by ``--mock``,
bittensor's (``bittensor``), and ``open_chain`` to pick one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from subnet_proxy.chain.base import (
    MAX_COMMITMENT_BYTES,
    Chain,
    ChainError,
    MetagraphSnapshot,
    Neuron,
    Registration,
    WeightsResult,
)

if TYPE_CHECKING:
    from bittensor_wallet import Wallet

    from subnet_proxy.config import Settings

__all__ = ["MAX_COMMITMENT_BYTES", "Chain", "ChainError", "MetagraphSnapshot", "Neuron", "Registration",
           "WeightsResult", "open_chain"]


def open_chain(settings: Settings, wallet: Wallet | None) -> Chain:
    """The chain the settings ask for: the local chain file under ``--mock``, else bittensor's.

    ``wallet`` is who sets weights (a read-only local handle when None). Opening does no I/O: the
    real client connects on its first call, within that call's timeout.
    """
    if settings.mock.enabled:
        from subnet_proxy.chain.local import LocalChain, default_chain_file

        path = Path(settings.mock.chain_file).expanduser() if settings.mock.chain_file else default_chain_file(
            settings.data_dir, settings.netuid)
        return LocalChain(path, netuid=settings.netuid, block_time_s=settings.mock.block_time_s,
                          hotkey=wallet.hotkey.ss58_address if wallet is not None else None,
                          lock_timeout_s=settings.subtensor.call_timeout)
    if wallet is None:
        raise ValueError("the real chain needs a wallet")
    import bittensor as bt

    from subnet_proxy.chain.bittensor import BittensorChain

    network = settings.subtensor.chain_endpoint or settings.subtensor.network
    return BittensorChain(lambda: bt.Subtensor(network=network), netuid=settings.netuid, wallet=wallet,
                          call_timeout=settings.subtensor.call_timeout)
