"""The chain boundary: what the validator, the miner and the side-server need from the chain.

One small interface, two implementations: the real one over bittensor 10.5 (``Subtensor``,
``Metagraph``, ``Subtensor.set_weights``) and the local chain used by ``--mock`` (no subtensor node
can run on the development machines). Code above this module cannot tell them apart.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bittensor_wallet import Wallet

    from subnet_proxy.config import Settings


@dataclass(frozen=True, slots=True)
class Neuron:
    """One registered uid as the metagraph shows it."""

    uid: int
    hotkey: str
    coldkey: str
    stake: float
    ip: str
    port: int
    validator_permit: bool
    last_update: int

    @property
    def is_serving(self) -> bool:
        """An axon is announced (bittensor writes 0.0.0.0:0 for none)."""
        return self.port > 0 and self.ip not in ("", "0.0.0.0")


@dataclass(frozen=True, slots=True)
class MetagraphSnapshot:
    """The metagraph at one block; immutable so the loop and the server can share it freely."""

    netuid: int
    block: int
    neurons: tuple[Neuron, ...]
    _by_hotkey: dict[str, Neuron] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_hotkey", {n.hotkey: n for n in self.neurons})

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        return self._by_hotkey.get(hotkey)

    def by_uid(self, uid: int) -> Neuron | None:
        return self.neurons[uid] if 0 <= uid < len(self.neurons) and self.neurons[uid].uid == uid else next(
            (n for n in self.neurons if n.uid == uid), None
        )

    @property
    def n(self) -> int:
        return len(self.neurons)


@dataclass(frozen=True, slots=True)
class WeightsResult:
    success: bool
    message: str


class Chain(abc.ABC):
    """What the neurons ask of the chain. Every call may be slow or fail: implementations bound
    each call with a timeout and raise ``ChainError`` rather than hang."""

    @abc.abstractmethod
    async def snapshot(self) -> MetagraphSnapshot:
        """A fresh metagraph (uids, hotkeys, coldkeys, stake, axons, permits, last_update)."""

    @abc.abstractmethod
    async def current_block(self) -> int: ...

    @abc.abstractmethod
    async def is_registered(self, hotkey: str) -> bool: ...

    @abc.abstractmethod
    async def set_weights(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        """Emit normalized weights for the uids (implementations process them for the netuid)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class ChainError(Exception):
    """A chain call failed or timed out."""


def open_chain(settings: Settings, wallet: Wallet | None) -> Chain:
    """The chain the settings ask for: the local chain file under ``--mock``, else bittensor's.

    ``wallet`` is who sets weights (a read-only local handle when None). Opening does no I/O: the
    real client connects on its first call, within that call's timeout.
    """
    if settings.mock.enabled:
        from subnet_proxy.chain_local import LocalChain, default_chain_file

        path = Path(settings.mock.chain_file).expanduser() if settings.mock.chain_file else default_chain_file(
            settings.data_dir, settings.netuid)
        return LocalChain(path, netuid=settings.netuid, block_time_s=settings.mock.block_time_s,
                          hotkey=wallet.hotkey.ss58_address if wallet is not None else None,
                          lock_timeout_s=settings.subtensor.call_timeout)
    if wallet is None:
        raise ValueError("the real chain needs a wallet")
    import bittensor as bt

    from subnet_proxy.chain_bittensor import BittensorChain

    network = settings.subtensor.chain_endpoint or settings.subtensor.network
    return BittensorChain(lambda: bt.Subtensor(network=network), netuid=settings.netuid, wallet=wallet,
                          call_timeout=settings.subtensor.call_timeout)
