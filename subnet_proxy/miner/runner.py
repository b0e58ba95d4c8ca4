"""The reference miner's life: load the models, start the axon, announce it, keep the metagraph fresh.

Everything that can be wrong with the set-up (a missing model, a wallet file, a taken port, an
unregistered hotkey) fails here at start with a message that names it, before any request is
taken. Once serving, a chain that cannot be read only delays the next metagraph refresh.
"""

from __future__ import annotations

import asyncio
import logging

from bittensor_wallet import Wallet

from subnet_proxy.chain import Chain, ChainError, Registration, open_chain
from subnet_proxy.config import Settings
from subnet_proxy.engines import Engines, build_engines
from subnet_proxy.miner.admission import AdmissionPolicy, MetagraphView
from subnet_proxy.miner.delivery import Deliverer, DeliveryPolicy
from subnet_proxy.miner.server import MinerAxon
from subnet_proxy.miner.service import MinerLimits, MinerService
from subnet_proxy.offline import pin_external_ip
from subnet_proxy.waits import wait_set
from subnet_proxy.wallets import open_wallet

log = logging.getLogger(__name__)

#: the address a --mock miner announces (local runs never look their IP up online).
MOCK_EXTERNAL_IP = "127.0.0.1"


class MinerStartError(RuntimeError):
    """The miner cannot start serving; the message says what to fix."""


async def announce(settings: Settings, wallet: Wallet, chain: Chain, axon: MinerAxon) -> None:
    """Make the axon findable: ``Chain.register`` (the local chain records it under --mock; a real network
    serves the axon of a hotkey that already holds a uid)."""
    ip = axon.external_ip or MOCK_EXTERNAL_IP
    port = settings.axon.external_port or axon.port
    try:
        uid = await chain.register(Registration.of_wallet(wallet, ip=ip, port=port))
    except ChainError as exc:
        raise MinerStartError(str(exc)) from exc
    log.info("axon of uid %d announced on netuid %d at %s:%d", uid, settings.netuid, ip, port)


async def keep_in_sync(chain: Chain, view: MetagraphView, interval_s: float, stop: asyncio.Event) -> None:
    """Refresh the metagraph every ``interval_s`` until ``stop`` is set; a failed read keeps the last one."""
    while not stop.is_set():
        if await wait_set(stop, interval_s):
            return
        try:
            view.update(await chain.snapshot())
        except ChainError as exc:
            log.warning("metagraph refresh failed, keeping the one from block %d: %s", view.snapshot.block, exc)


async def run_miner(settings: Settings, stop: asyncio.Event, *, engines: Engines | None = None) -> None:
    """Serve until ``stop`` is set; ``engines`` given are shared (and left open), else built from settings."""
    if settings.mock.enabled:
        pin_external_ip(settings.axon.external_ip or MOCK_EXTERNAL_IP)
    wallet = open_wallet(settings)
    chain = open_chain(settings, wallet)
    owned = engines is None
    if engines is None:
        engines = build_engines(settings.engine)
    try:
        await engines.load()
        view = MetagraphView(await chain.snapshot())
        policy = AdmissionPolicy(min_stake=settings.miner.min_stake,
                                 allow_non_validators=settings.miner.allow_non_validators)
        limits = MinerLimits(max_audio_s=settings.miner.max_audio_s, tts_format=settings.miner.tts_format)
        delivery = Deliverer(wallet.hotkey, DeliveryPolicy(public_only=not settings.mock.enabled))
        service = MinerService(engines, view, policy, limits, delivery=delivery)
        external_ip = settings.axon.external_ip or (MOCK_EXTERNAL_IP if settings.mock.enabled else None)
        axon = MinerAxon(settings.axon, wallet, service, max_body_bytes=int(settings.miner.max_body_mb * 1_000_000),
                         external_ip=external_ip)
        await axon.start()
        try:
            await announce(settings, wallet, chain, axon)
            view.update(await chain.snapshot())
            log.info("miner %s serving on port %d", wallet.hotkey.ss58_address, axon.port)
            await keep_in_sync(chain, view, settings.neuron.resync_s, stop)
        finally:
            await axon.stop()
    finally:
        if owned:
            engines.close()
        await chain.close()
