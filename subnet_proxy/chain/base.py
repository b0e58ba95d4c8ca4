"""The chain boundary: what the validator, the miner and the side-server need from the chain.

One small interface, two implementations: the real one over bittensor 10.5 (``Subtensor``,
``Metagraph``, ``Subtensor.set_weights``) and the local chain used by ``--mock`` (no subtensor node
can run on the development machines). Code above this module cannot tell them apart.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bittensor_wallet import Wallet


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
class Registration:
    """What a neuron announces when it registers: hotkey, coldkey, axon, and (local chain only) stake and
    permit, which on a real network come from staking, not from the neuron. Checked when made."""

    hotkey: str
    coldkey: str
    ip: str = "0.0.0.0"
    port: int = 0
    stake: float = 0.0
    validator_permit: bool = False

    def __post_init__(self) -> None:
        if not self.hotkey or not self.coldkey:
            raise ValueError("hotkey and coldkey are required")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if not math.isfinite(self.stake) or self.stake < 0:
            raise ValueError(f"stake {self.stake} must be a finite number >= 0")

    @classmethod
    def of_wallet(cls, wallet: Wallet, **fields: Any) -> Registration:
        """The registration of a bittensor wallet's hotkey and coldkey (axon, stake, permit as keywords)."""
        return cls(hotkey=wallet.hotkey.ss58_address, coldkey=wallet.coldkeypub.ss58_address, **fields)


#: the longest commitment: the Commitments pallet's largest ``Raw`` field is ``Raw128``.
MAX_COMMITMENT_BYTES = 128


def check_commitment(data: str) -> bytes:
    """The commitment's bytes; ChainError when it cannot be committed (empty, or over 128 bytes)."""
    raw = data.encode("utf-8")
    if not 0 < len(raw) <= MAX_COMMITMENT_BYTES:
        raise ChainError(f"a commitment is 1 to {MAX_COMMITMENT_BYTES} bytes, not {len(raw)}")
    return raw


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
    async def register(self, registration: Registration) -> int:
        """Make this neuron known and return its uid. The local chain writes the registration (a new
        uid, or the hotkey's own with a new axon, stake and permit); a real network only serves the
        axon of a hotkey that already holds a uid (registering costs TAO: ``btcli subnet register``)
        and raises ChainError for one that does not."""

    @abc.abstractmethod
    async def set_weights(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        """Emit normalized weights for the uids (implementations process them for the netuid)."""

    async def weights_version(self) -> int:
        """The subnet's ``weights_version`` hyperparameter: weights set with a lower ``version_key``
        are refused by the chain. A chain without the notion (a test fake) has none: 0."""
        return 0

    @abc.abstractmethod
    async def publish(self, data: str) -> None:
        """Commit ``data`` (at most ``MAX_COMMITMENT_BYTES`` of UTF-8) as this neuron's commitment on the
        netuid, replacing its previous one (bittensor's ``set_commitment``: a ``Raw`` field of the
        Commitments pallet). Validators publish the URL peers reach their side-server at. Raises
        ChainError when it cannot be written (too long, not registered, the extrinsic failed)."""

    @abc.abstractmethod
    async def commitments(self) -> dict[str, str]:
        """Every neuron's current commitment on the netuid, by hotkey (bittensor's
        ``get_all_commitments``). Anyone can commit anything: callers check what they read."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class ChainError(Exception):
    """A chain call failed or timed out."""
