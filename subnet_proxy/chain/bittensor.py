"""The real chain: bittensor 10.5 ``Subtensor``/``Metagraph`` behind the ``Chain`` interface.

bittensor's client is synchronous and talks over one websocket that can stall. So every call runs
on a small dedicated thread pool and is bounded by ``--subtensor.call_timeout``: the event loop
never waits on the chain. A call that times out or fails drops the connection (the next call opens
a fresh one); reads are retried with exponential backoff, then surface as ``ChainError``, which the
loops log and survive. ``set_weights`` is not retried here (an extrinsic that timed out may still
land); the weights loop tries again on its own cadence. Before any extrinsic the chain's
``WeightsSetRateLimit`` is checked, so the validator never spams "too soon" transactions. Weights
go through ``Subtensor.set_weights``, which itself takes the commit-reveal path (timelocked
commits) on a subnet that enables it. Commitments (``publish``, ``commitments``) are
``set_commitment`` / ``get_all_commitments``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from bittensor.core.extrinsics.serving import serve_extrinsic
from bittensor.utils.weight_utils import process_weights_for_netuid

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

T = TypeVar("T")

#: attempts for a read before it surfaces as ``ChainError``.
DEFAULT_ATTEMPTS = 3
#: first backoff between attempts; doubled each time.
DEFAULT_BACKOFF_S = 1.0
#: seconds the chain's weights rate limit is cached (it is a hyperparameter that rarely changes).
RATE_LIMIT_TTL_S = 600.0
#: worker threads for chain calls; a stalled call holds one until its websocket gives up.
WORKERS = 4
#: bittensor's axon protocol number (``serve_axon`` announces 4).
AXON_PROTOCOL = 4
#: serving waits for the extrinsic's finalization: a few blocks, not one call's time.
SERVE_TIMEOUT_FACTOR = 4


class BittensorChain(Chain):
    """``Chain`` over a ``bt.Subtensor``; ``subtensor_factory`` builds (and rebuilds) the client."""

    def __init__(
        self,
        subtensor_factory: Callable[[], Any],
        *,
        netuid: int,
        wallet: Any,
        call_timeout: float = 30.0,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        serve: Callable[..., Any] = serve_extrinsic,
    ) -> None:
        self._factory = subtensor_factory
        self._serve = serve
        self.netuid = netuid
        self._wallet = wallet
        self._timeout = call_timeout
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="chain")
        self._client_lock = threading.Lock()
        self._subtensor: Any = None
        self._metagraph: Any = None
        self._rate_limit: tuple[float, int] | None = None
        self._last_weights_block: int | None = None

    @property
    def hotkey(self) -> str:
        return str(self._wallet.hotkey.ss58_address)

    # -- the Chain interface -------------------------------------------------------------------

    async def snapshot(self) -> MetagraphSnapshot:
        def sync() -> MetagraphSnapshot:
            metagraph = self._client().metagraph(netuid=self.netuid, lite=True)
            self._metagraph = metagraph
            return snapshot_of(metagraph, self.netuid)

        return await self._read("metagraph", sync)

    async def current_block(self) -> int:
        return await self._read("current block", lambda: int(self._client().get_current_block()))

    async def is_registered(self, hotkey: str) -> bool:
        return await self._read(
            "registration", lambda: bool(self._client().is_hotkey_registered(hotkey, netuid=self.netuid)))

    async def register(self, registration: Registration) -> int:
        """Serve the axon of this wallet's hotkey, which must already hold a uid; its uid."""
        hotkey = registration.hotkey
        if hotkey != self.hotkey:
            raise ChainError(f"this chain client acts for {self.hotkey}, not {hotkey}")
        uid = await self._read("uid", lambda: self._client().get_uid_for_hotkey_on_subnet(hotkey, self.netuid))
        if uid is None:
            raise ChainError(f"hotkey {hotkey} is not registered on netuid {self.netuid}; "
                             f"register it first (btcli subnet register)")
        if registration.port > 0:
            def serve() -> None:
                result = self._serve(self._client(), self._wallet, registration.ip, registration.port,
                                     AXON_PROTOCOL, self.netuid)
                if not result.success:
                    raise ChainError(f"serving the axon failed: {result.message}")

            await self._call("serve axon", serve, timeout=self._timeout * SERVE_TIMEOUT_FACTOR)
        return int(uid)

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        """Check registration and the rate limit, process the weights for the netuid, emit them."""
        if len(uids) != len(weights):
            return WeightsResult(False, f"{len(uids)} uids but {len(weights)} weights")
        try:
            snap = await self.snapshot()
            limit = await self._weights_rate_limit()
        except ChainError as exc:
            return WeightsResult(False, str(exc))
        me = snap.by_hotkey(self.hotkey)
        if me is None:
            return WeightsResult(False, f"hotkey {self.hotkey} is not registered on netuid {self.netuid}")
        last = max(me.last_update, self._last_weights_block or 0)
        if snap.block - last <= limit:
            return WeightsResult(False, f"too soon: {snap.block - last} blocks since the last update, "
                                        f"the rate limit is {limit}; not sent")
        raw_uids = np.asarray(uids, dtype=np.int64)
        raw_weights = np.nan_to_num(np.asarray(weights, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)

        def emit() -> WeightsResult:
            subtensor = self._client()
            p_uids, p_weights = process_weights_for_netuid(
                uids=raw_uids, weights=raw_weights, netuid=self.netuid, subtensor=subtensor, metagraph=self._metagraph)
            response = subtensor.set_weights(
                wallet=self._wallet, netuid=self.netuid, uids=p_uids, weights=p_weights, version_key=version_key,
                wait_for_inclusion=True, wait_for_finalization=False, max_attempts=1)
            return WeightsResult(bool(response.success), str(response.message or ""))

        try:
            result = await self._call("set_weights", emit)
        except ChainError as exc:
            return WeightsResult(False, str(exc))
        if result.success:
            self._last_weights_block = snap.block
        return result

    async def weights_version(self) -> int:
        value = await self._read("weights version",
                                 lambda: self._client().get_hyperparameter("WeightsVersionKey", self.netuid))
        return int(value or 0)

    async def publish(self, data: str) -> None:
        """``Subtensor.set_commitment`` for this wallet's hotkey, waiting for inclusion (like serving an
        axon it takes a few blocks, so it has the longer timeout); not retried here: the caller
        publishes again at its next resync when the chain still shows the old value."""
        check_commitment(data)

        def commit() -> None:
            result = self._client().set_commitment(wallet=self._wallet, netuid=self.netuid, data=data,
                                                   wait_for_inclusion=True, wait_for_finalization=False)
            if not result.success:
                raise ChainError(f"the commitment was refused: {result.message}")

        await self._call("set_commitment", commit, timeout=self._timeout * SERVE_TIMEOUT_FACTOR)

    async def commitments(self) -> dict[str, str]:
        def read() -> dict[str, str]:
            return {str(hk): str(data) for hk, data in self._client().get_all_commitments(netuid=self.netuid).items()}

        return await self._read("commitments", read)

    async def close(self) -> None:
        """Close the connection (bounded by the call timeout) and release the worker threads."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._drop_client), self._timeout)
        except TimeoutError:
            log.warning("closing the subtensor took over %s s; left to finish on its own", self._timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- calls ------------------------------------------------------------------------------------

    async def _weights_rate_limit(self) -> int:
        now = time.monotonic()
        if self._rate_limit is None or now - self._rate_limit[0] > RATE_LIMIT_TTL_S:
            value = await self._read("weights rate limit", lambda: self._client().weights_rate_limit(self.netuid))
            self._rate_limit = (now, int(value or 0))
        return self._rate_limit[1]

    async def _read(self, what: str, fn: Callable[[], T]) -> T:
        """A read with retries: attempts spaced by an exponential backoff, then ``ChainError``."""
        delay = self._backoff_s
        for attempt in range(1, self._attempts):
            try:
                return await self._call(what, fn)
            except ChainError as exc:
                log.warning("chain %s failed (attempt %d/%d), retrying in %.1f s: %s",
                            what, attempt, self._attempts, delay, exc)
            await asyncio.sleep(delay)
            delay *= 2
        return await self._call(what, fn)

    async def _call(self, what: str, fn: Callable[[], T], *, timeout: float | None = None) -> T:
        """Run ``fn`` on the chain pool within the call timeout; any failure becomes ``ChainError``."""
        loop = asyncio.get_running_loop()
        limit = timeout or self._timeout
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, fn), limit)
        except TimeoutError as exc:
            self._drop_client_later()
            raise ChainError(f"chain {what} timed out after {limit} s") from exc
        # The third-party client raises anything from websocket, SSL, substrate and SCALE-decoding
        # errors; all of them mean this call failed. Each is logged with its traceback and turned
        # into ChainError for the caller, never swallowed.
        except Exception as exc:
            log.debug("chain %s failed", what, exc_info=True)
            self._drop_client_later()
            raise ChainError(f"chain {what} failed: {type(exc).__name__}: {exc}") from exc

    def _client(self) -> Any:
        with self._client_lock:
            if self._subtensor is None:
                self._subtensor = self._factory()
            return self._subtensor

    def _drop_client(self) -> None:
        with self._client_lock:
            subtensor, self._subtensor = self._subtensor, None
        if subtensor is not None:
            try:
                subtensor.close()
            except (OSError, RuntimeError, ConnectionError) as exc:
                log.debug("closing the subtensor failed: %s", exc)

    def _drop_client_later(self) -> None:
        """Forget the (maybe stalled) connection; close it on a spare thread, never on the loop."""
        threading.Thread(target=self._drop_client, name="chain-close", daemon=True).start()


def snapshot_of(metagraph: Any, netuid: int) -> MetagraphSnapshot:
    """The immutable snapshot of a synced ``bt.Metagraph``."""
    stake = np.asarray(metagraph.S, dtype=np.float64)
    permits = np.asarray(metagraph.validator_permit, dtype=bool)
    last_update = np.asarray(metagraph.last_update, dtype=np.int64)
    neurons = tuple(
        Neuron(uid=int(uid), hotkey=str(metagraph.hotkeys[i]), coldkey=str(metagraph.coldkeys[i]),
               stake=float(stake[i]), ip=str(metagraph.axons[i].ip), port=int(metagraph.axons[i].port),
               validator_permit=bool(permits[i]), last_update=int(last_update[i]))
        for i, uid in enumerate(np.asarray(metagraph.uids, dtype=np.int64))
    )
    # ``block`` is a 0-d array after a sync but a 1-element one on a fresh metagraph.
    block = int(np.asarray(metagraph.block).reshape(-1)[0])
    return MetagraphSnapshot(netuid=netuid, block=block, neurons=neurons)
