"""The local chain behind ``--mock``: a metagraph in one JSON file that several processes share.

No subtensor node can run on the development machines, and bittensor 10.5's ``MockSubtensor`` is
broken for metagraph sync and ``set_weights``. So local runs keep the subnet in a JSON file:
validators and miners started separately register into it (under a file lock, so concurrent
writers lose nothing), blocks advance with wall time from the genesis stamp, and ``set_weights``
calls are processed with bittensor's own ``process_weights`` and recorded in a bounded history
(a JSON-lines file beside the chain file, so reading the metagraph never parses it). Commitments
(``publish``: where a validator's side-server is reached) are kept by hotkey in the same file.

Writers take the lock and replace the file atomically (tmp + ``os.replace``); readers need no lock
because they only ever see a whole file. Every call runs in a worker thread: file I/O never blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from bittensor.utils.weight_utils import process_weights
from filelock import FileLock, Timeout

from subnet_proxy.atomic_file import write_bytes_atomic, write_json_atomic
from subnet_proxy.chain.base import (
    Chain,
    ChainError,
    MetagraphSnapshot,
    Neuron,
    Registration,
    WeightsResult,
    check_commitment,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: bittensor's default ``MaxAllowedUids`` for a new subnet.
DEFAULT_MAX_UIDS = 256
#: blocks a validator waits between two weight settings (the chain's ``WeightsSetRateLimit``).
DEFAULT_WEIGHTS_RATE_LIMIT = 1
#: set_weights calls kept in the history file; older ones are dropped.
DEFAULT_HISTORY_LIMIT = 500
#: the local subnet's weight hyperparameters (``MinAllowedWeights``, ``MaxWeightsLimit`` as a share).
MIN_ALLOWED_WEIGHTS = 1
MAX_WEIGHT_LIMIT = 1.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WeightsRecord:
    """One set_weights call as the local chain recorded it (weights after processing)."""

    block: int
    time: float
    hotkey: str
    uid: int
    uids: list[int]
    weights: list[float]
    version_key: int


def default_chain_file(data_dir: Path, netuid: int) -> Path:
    return data_dir / "local_chain" / f"netuid-{netuid}.json"


class LocalChain(Chain):
    """The ``Chain`` of local runs; ``hotkey`` is who this process sets weights as (None: read-only)."""

    def __init__(
        self,
        path: Path,
        *,
        netuid: int,
        hotkey: str | None = None,
        block_time_s: float = 12.0,
        lock_timeout_s: float = 30.0,
        max_uids: int = DEFAULT_MAX_UIDS,
        weights_rate_limit: int = DEFAULT_WEIGHTS_RATE_LIMIT,
        weights_version: int = 0,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if block_time_s <= 0:
            raise ValueError("block_time_s must be positive")
        self.path = Path(path)
        self.netuid = netuid
        self.hotkey = hotkey
        self._block_time_s = block_time_s
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout_s)
        self._max_uids = max_uids
        self._rate_limit = weights_rate_limit
        self._weights_version = weights_version
        self._history_limit = history_limit
        self._clock = clock
        self._warned_block_time = False
        self._genesis_seen: dict[str, Any] | None = None

    # -- the Chain interface -------------------------------------------------------------------

    async def snapshot(self) -> MetagraphSnapshot:
        return await self._run(self.snapshot_sync)

    async def current_block(self) -> int:
        """From the genesis stamp; once the file has been read no I/O is needed (genesis never moves)."""
        if self._genesis_seen is None:
            return await self._run(lambda: self._block_of(self._read()))
        return self._block_of(self._genesis_seen)

    async def is_registered(self, hotkey: str) -> bool:
        return await self._run(lambda: any(n["hotkey"] == hotkey for n in self._read()["neurons"]))

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        return await self._run(lambda: self.set_weights_sync(uids, weights, version_key=version_key))

    async def weights_version(self) -> int:
        """Fixed when the file is created (``weights_version``); files older than the field have 0."""
        return await self._run(lambda: int(self._read().get("weights_version", 0)))

    async def publish(self, data: str) -> None:
        await self._run(lambda: self.publish_sync(data))

    async def commitments(self) -> dict[str, str]:
        return await self._run(self.commitments_sync)

    async def close(self) -> None:
        """Nothing stays open between calls."""

    # -- local-only operations (registration, history) -------------------------------------------

    async def register(self, registration: Registration, *, uid: int | None = None) -> int:
        return await self._run(lambda: self.register_sync(registration, uid=uid))

    async def weights_history(self, limit: int | None = None) -> list[WeightsRecord]:
        return await self._run(lambda: self.weights_history_sync(limit))

    def register_sync(self, registration: Registration, *, uid: int | None = None) -> int:
        """Register (or update) a neuron and return its uid.

        A hotkey already registered keeps its uid and gets the new axon, stake and permit. A new
        hotkey takes the next free uid, or replaces the neuron at ``uid`` when given (the way a
        deregistered uid is taken over on chain: last_update starts again).
        """
        hotkey = registration.hotkey

        def change(state: dict[str, Any]) -> int:
            neurons: list[dict[str, Any]] = state["neurons"]
            block = self._block_of(state)
            entry = asdict(registration)
            current = next((n for n in neurons if n["hotkey"] == hotkey), None)
            if current is not None and (uid is None or uid == current["uid"]):
                current.update(entry)
                return int(current["uid"])
            if current is not None:
                raise ValueError(f"hotkey {hotkey} is already registered as uid {current['uid']}")
            if uid is None:
                if len(neurons) >= self._max_uids:
                    raise ChainError(f"the local subnet is full ({self._max_uids} uids)")
                new_uid = len(neurons)
                neurons.append({"uid": new_uid, **entry, "last_update": block, "registered_at": block})
                return new_uid
            if not 0 <= uid < len(neurons):
                raise ValueError(f"uid {uid} is not registered (0..{len(neurons) - 1})")
            log.info("uid %d: hotkey %s replaced by %s", uid, neurons[uid]["hotkey"], hotkey)
            neurons[uid] = {"uid": uid, **entry, "last_update": block, "registered_at": block}
            return uid

        return self._update(change)

    def publish_sync(self, data: str) -> None:
        """This handle's hotkey commits ``data`` (as ``set_commitment`` does: registered hotkeys only,
        at most 128 bytes, the previous commitment replaced)."""
        check_commitment(data)
        hotkey = self.hotkey
        if hotkey is None:
            raise ChainError("this local chain handle has no hotkey to commit as")

        def change(state: dict[str, Any]) -> None:
            if not any(n["hotkey"] == hotkey for n in state["neurons"]):
                raise ChainError(f"hotkey {hotkey} is not registered on netuid {self.netuid}")
            state.setdefault("commitments", {})[hotkey] = data

        self._update(change)

    def commitments_sync(self) -> dict[str, str]:
        """The commitments of the hotkeys registered now (a replaced hotkey's is gone with its uid)."""
        state = self._read()
        registered = {n["hotkey"] for n in state["neurons"]}
        return {hk: str(data) for hk, data in state.get("commitments", {}).items() if hk in registered}

    def snapshot_sync(self) -> MetagraphSnapshot:
        state = self._read()
        try:
            neurons = tuple(
                Neuron(uid=int(n["uid"]), hotkey=n["hotkey"], coldkey=n["coldkey"], stake=float(n["stake"]),
                       ip=n["ip"], port=int(n["port"]), validator_permit=bool(n["validator_permit"]),
                       last_update=int(n["last_update"]))
                for n in state["neurons"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainError(f"the local chain file {self.path} has a malformed neuron: {exc!r}") from exc
        return MetagraphSnapshot(netuid=self.netuid, block=self._block_of(state), neurons=neurons)

    def set_weights_sync(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        if self.hotkey is None:
            return WeightsResult(False, "this local chain handle has no hotkey to set weights as")
        if len(uids) != len(weights):
            return WeightsResult(False, f"{len(uids)} uids but {len(weights)} weights")
        hotkey = self.hotkey

        def change(state: dict[str, Any]) -> WeightsResult:
            neurons = state["neurons"]
            me = next((n for n in neurons if n["hotkey"] == hotkey), None)
            if me is None:
                return WeightsResult(False, f"hotkey {hotkey} is not registered on netuid {self.netuid}")
            if not me["validator_permit"]:
                return WeightsResult(False, f"hotkey {hotkey} has no validator permit")
            if version_key < state.get("weights_version", 0):  # the chain's IncorrectWeightVersionKey
                return WeightsResult(False, f"version_key {version_key} is below the subnet's weights version "
                                            f"{state['weights_version']}")
            block = self._block_of(state)
            last = me.get("weights_block")
            if last is not None and block - last <= state["weights_rate_limit"]:  # bittensor: allowed when >
                return WeightsResult(False, f"too soon: {block - last} blocks since the last weights, "
                                            f"the rate limit is {state['weights_rate_limit']}")
            bad = [u for u in uids if not 0 <= int(u) < len(neurons)]
            if bad:
                return WeightsResult(False, f"uids not registered: {bad[:10]}")
            raw = np.asarray(weights, dtype=np.float32)
            if not np.all(np.isfinite(raw)) or np.any(raw < 0):
                return WeightsResult(False, "weights must be finite and >= 0")
            out_uids, out_weights = process_weights(
                uids=np.asarray(uids, dtype=np.int64), weights=raw, num_neurons=len(neurons),
                min_allowed_weights=MIN_ALLOWED_WEIGHTS, max_weight_limit=MAX_WEIGHT_LIMIT)
            records.append(WeightsRecord(block=block, time=self._clock(), hotkey=hotkey, uid=int(me["uid"]),
                                         uids=[int(u) for u in out_uids], weights=[float(w) for w in out_weights],
                                         version_key=int(version_key)))
            me["last_update"] = me["weights_block"] = block
            return WeightsResult(True, f"weights set at block {block}")

        records: list[WeightsRecord] = []
        try:
            with self._lock:  # reentrant: the state write and the history append are one step
                result = self._update(change)
                if records:
                    self._append_history(records[0])
        except Timeout as exc:
            raise ChainError(f"the local chain {self.path} stayed locked for {self._lock.timeout} s") from exc
        except OSError as exc:
            raise ChainError(f"cannot write the weights history {self.history_path}: {exc}") from exc
        return result

    def weights_history_sync(self, limit: int | None = None) -> list[WeightsRecord]:
        """The recorded set_weights calls, oldest first (the last ``limit`` when given)."""
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChainError(f"cannot read the weights history {self.history_path}: {exc}") from exc
        records = []
        for line in lines[-self._history_limit:]:
            try:
                records.append(WeightsRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                log.warning("skipping an unreadable line of %s: %s", self.history_path, exc)
        return records[-limit:] if limit else records

    # -- the file --------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    @property
    def history_path(self) -> Path:
        """set_weights records, one JSON line each, beside the chain file (kept out of every snapshot read)."""
        return self.path.with_name(self.path.stem + ".weights.jsonl")

    def _append_history(self, record: WeightsRecord) -> None:
        """Append under the lock; past twice the limit, keep the newest ``history_limit`` lines."""
        with self.history_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        lines = self.history_path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 2 * self._history_limit:
            write_bytes_atomic(self.history_path, ("\n".join(lines[-self._history_limit:]) + "\n").encode("utf-8"))

    def _block_of(self, state: dict[str, Any]) -> int:
        return max(0, int((self._clock() - state["genesis"]) / state["block_time_s"]))

    def _genesis(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "netuid": self.netuid, "genesis": self._clock(),
                "block_time_s": self._block_time_s, "weights_rate_limit": self._rate_limit,
                "weights_version": self._weights_version, "neurons": []}

    def _read(self) -> dict[str, Any]:
        """The chain's state; a missing file is a chain with no neurons yet (created on first write)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._genesis()
        except OSError as exc:
            raise ChainError(f"cannot read the local chain {self.path}: {exc}") from exc
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChainError(f"the local chain file {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            raise ChainError(f"the local chain file {self.path} has an unknown format")
        if state.get("netuid") != self.netuid:
            raise ChainError(f"the local chain file {self.path} is for netuid {state.get('netuid')}, not {self.netuid}")
        self._genesis_seen = {"genesis": state["genesis"], "block_time_s": state["block_time_s"]}
        if state["block_time_s"] != self._block_time_s and not self._warned_block_time:
            self._warned_block_time = True
            log.warning("the local chain %s keeps its block time of %s s (asked for %s s): it is fixed at creation",
                        self.path, state["block_time_s"], self._block_time_s)
        return state

    def _update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Read-modify-write under the file lock; the file is replaced whole or not at all."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                state = self._read()
                result = change(state)
                write_json_atomic(self.path, state, indent=1)
                return result
        except Timeout as exc:
            raise ChainError(f"the local chain {self.path} stayed locked for {self._lock.timeout} s") from exc
        except OSError as exc:
            raise ChainError(f"cannot write the local chain {self.path}: {exc}") from exc
