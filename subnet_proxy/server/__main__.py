"""Run the side-server alone: an ingestion-only instance over a shared store (no validator loop here).

    python -m subnet_proxy.server --store firestore --blobs gcs --proxy.port 8000 --wallet.name W ...
    python -m subnet_proxy.server --mock --proxy.api_key KEY        # local chain, embedded stores

The metagraph comes from the chain when a wallet is available (its hotkey is the receiver of signed
requests); without one the instance still takes client tasks and answers the signed endpoints with
503 ``no_metagraph``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from subnet_proxy.blobs import open_blob_store
from subnet_proxy.chain import Chain, ChainError, MetagraphSnapshot, open_chain
from subnet_proxy.config import Settings, build_settings
from subnet_proxy.keys import open_key_store
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.store import open_task_store
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.telemetry import setup_logging
from subnet_proxy.wallets import WalletError, open_wallet

log = logging.getLogger("subnet_proxy.server")


class MetagraphFollower:
    """Keeps the latest snapshot of the chain, refreshed every ``resync_s``; a failed refresh keeps the last."""

    def __init__(self, chain: Chain, resync_s: float) -> None:
        self.chain = chain
        self.resync_s = resync_s
        self.latest: MetagraphSnapshot | None = None

    def __call__(self) -> MetagraphSnapshot | None:
        return self.latest

    async def run(self) -> None:
        while True:
            try:
                self.latest = await self.chain.snapshot()
            except ChainError as exc:
                log.warning("metagraph refresh failed (keeping block %s): %s",
                            self.latest.block if self.latest else None, exc)
            await asyncio.sleep(self.resync_s)


def open_follower(settings: Settings) -> tuple[MetagraphFollower | None, str]:
    """(the chain follower, this server's hotkey), or (None, "") when no wallet is available."""
    try:
        wallet = open_wallet(settings)
    except WalletError as exc:
        log.warning("no wallet (%s): signed endpoints will answer 503 no_metagraph", exc)
        return None, ""
    return MetagraphFollower(open_chain(settings, wallet), settings.neuron.resync_s), wallet.hotkey.ss58_address


async def serve(settings: Settings) -> None:
    store = WatchedStore(open_task_store(settings))
    blobs = open_blob_store(settings)
    keys = open_key_store(settings)
    follower, own_hotkey = open_follower(settings)
    follow_task = asyncio.create_task(follower.run()) if follower else None
    app = create_app(settings, store=store, blobs=blobs, keys=keys,
                     metagraph=follower if follower else (lambda: None), own_hotkey=own_hotkey)
    server = await start_server(app, settings)
    print(f"side-server listening on {server.url} (docs: {server.url}/docs)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        await server.stop()
        if follow_task is not None:
            follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow_task
        if follower is not None:
            await follower.chain.close()
        for closeable in (keys, blobs, store):
            await closeable.close()


def main(argv: Sequence[str] | None = None) -> None:
    settings = build_settings(argv, "subnet-proxy side-server (ingestion-only instance)")
    setup_logging(settings.logging)  # the validator's: written off the event loop, flushed at exit
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
