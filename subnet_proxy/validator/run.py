"""A validator process from Settings: open every part, run the loops and the side-server, close in order.

``run_validator`` is what the validator's entry point (``subnet_proxy.validator.main``) calls.
Under ``--mock`` it also pins the external IP to loopback, registers this validator in the local
chain (with a validator permit), starts ``--mock.miners`` reference miners as child processes,
keeps wandb offline, offers miners the side-server's own loopback URL for late answers (unless
``--proxy.public_url`` says otherwise), and prints a development API key with ready ``curl`` commands.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack

from bittensor_wallet import Wallet

from protocol import __spec_version__, __version__
from subnet_proxy.blobs import open_blob_store
from subnet_proxy.chain import Chain, ChainError, Registration, open_chain
from subnet_proxy.config import MockSettings, Settings
from subnet_proxy.engines import build_engines
from subnet_proxy.keys import KeyStore, Role, open_key_store
from subnet_proxy.monitoring.metered import MeteredStore
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.offline import pin_external_ip
from subnet_proxy.rewards import ScoringEngines
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.store import open_task_store
from subnet_proxy.telemetry import Telemetry
from subnet_proxy.validator.evaluation import EngineScorer
from subnet_proxy.validator.mock_miners import MockMiners
from subnet_proxy.validator.neuron import Validator
from subnet_proxy.wallets import open_wallet

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: stake a validator registers with on the local chain by default (``--mock.validator_stake``).
MOCK_VALIDATOR_STAKE = MockSettings.model_fields["validator_stake"].default


async def run_validator(settings: Settings, stop: asyncio.Event, *, say: Callable[[str], None] = print) -> None:
    """Serve until ``stop`` is set, then shut down gracefully (see ``Validator.stop``)."""
    mock = settings.mock.enabled
    if mock:
        pin_external_ip(LOOPBACK)
    wallet = open_wallet(settings)
    hotkey = wallet.hotkey.ss58_address
    async with AsyncExitStack() as exits:
        chain = open_chain(settings, wallet)
        exits.push_async_callback(chain.close)
        if mock:
            await _register_mock_validator(chain, wallet, settings.mock.validator_stake)
        await check_spec_version(chain, settings.netuid)
        metrics = TaskMetrics()  # fed by the store both the loop and the side-server write through
        store = MeteredStore(open_task_store(settings), metrics)
        exits.push_async_callback(store.close)
        blobs = open_blob_store(settings)
        exits.push_async_callback(blobs.close)
        keys = open_key_store(settings)
        exits.push_async_callback(keys.close)
        engines = build_engines(settings.engine)
        exits.callback(engines.close)
        # loaded in a worker: the runtimes' compute threads inherit the workers' lower CPU priority
        scoring = await engines.pool.run(ScoringEngines.build, engines, settings.engine)

        if mock and settings.mock.miners:
            miners = MockMiners(settings, settings.mock.miners)
            exits.push_async_callback(miners.stop)
            miners.start()  # on the loop's thread: the children's parent-death signal follows the forking thread
            say(f"starting {settings.mock.miners} reference miner(s); loading their models ...")
            await miners.wait_ready(chain)

        ingest = IngestActivity()  # the side-server's uploads in flight, which the forward loop yields to
        telemetry = Telemetry(settings, hotkey=hotkey)
        await telemetry.start()
        exits.push_async_callback(telemetry.close)
        validator = Validator(settings, keypair=wallet.hotkey, chain=chain, store=store, blobs=blobs,
                              scorer=EngineScorer(scoring, blobs), engines=engines,
                              peer_scorer=lambda peer_blobs: EngineScorer(scoring, peer_blobs),
                              external_ip=LOOPBACK if mock else await external_ip(), telemetry=telemetry,
                              metrics=metrics, ingest=ingest)
        if not await validator.start(stop):  # waits for a readable chain; a stop ends the wait
            return
        exits.push_async_callback(validator.stop)

        if settings.proxy.enabled:
            app = create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=validator.metagraph,
                             own_hotkey=hotkey, miner_stats=validator.miner_stats, monitor=validator.monitor,
                             quorum_members=validator.quorum_members, ingest=ingest)
            server = await start_server(app, settings)
            exits.push_async_callback(server.stop)  # runs first: no new requests while the loop drains
            if mock:  # peers reach a local validator on its loopback URL (a real one: --proxy.public_url)
                await validator.serve_peers(server.url)
            if mock and settings.proxy.public_url is None:  # local miners deliver late answers over loopback
                validator.dispatcher.offer_delivery(server.url)
            if mock:
                say(await _dev_banner(settings, keys, server.url))
            else:
                say(f"side-server on {server.url}")
        await stop.wait()
        log.info("shutting down: stopping intake, finishing in-flight tasks")


class OutdatedBuild(ChainError):
    """This build's spec version is below the subnet's weights version: the chain would refuse its weights."""


async def check_spec_version(chain: Chain, netuid: int, *, spec_version: int = __spec_version__) -> None:
    """Refuse to start a validator whose weights the chain would refuse (``version_key`` below the
    subnet's ``weights_version``): it would serve clients and never set weights, silently. A chain
    that cannot be read yet is not fatal here (``Validator.start`` waits for it): a warning says so."""
    try:
        required = await chain.weights_version()
    except ChainError as exc:
        log.warning("cannot read the subnet's weights version (%s); starting with spec version %d", exc, spec_version)
        return
    if spec_version < required:
        raise OutdatedBuild(f"this build's spec version {spec_version} (subnet-proxy {__version__}) is below the "
                            f"weights version {required} of netuid {netuid}: the chain would refuse its weights; "
                            "update subnet-proxy (git pull, then pip install the same extras again) and restart")
    log.info("spec version %d, subnet weights version %d", spec_version, required)


async def _register_mock_validator(chain: Chain, wallet: Wallet, stake: float) -> None:
    """On the local chain the validator registers itself, with a permit and ``--mock.validator_stake``."""
    await chain.register(Registration.of_wallet(wallet, stake=stake, validator_permit=True))


async def external_ip() -> str:
    """This host's public IP, looked up off the event loop: bittensor asks web services over HTTP
    with no timeout, then shells out to curl, which can take seconds or hang."""
    from bittensor.utils import networking

    return str(await asyncio.to_thread(networking.get_external_ip))


def _dev_key(settings: Settings) -> str:
    """The development API key of this data dir: the first --proxy.api_key, else one kept in a file."""
    if settings.proxy.api_key:
        return settings.proxy.api_key[0]
    path = settings.data_dir / "dev_api_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = "spx_dev_" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


async def _dev_banner(settings: Settings, keys: KeyStore, url: str) -> str:
    key = await asyncio.to_thread(_dev_key, settings)
    await keys.seed(key, role=Role.CLIENT, name="dev (--mock)")
    return "\n".join([
        "",
        f"subnet-proxy validator (local mode) on {url}  data: {settings.data_dir}",
        f"dev API key: {key}",
        "",
        "  # summarize text",
        f"  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
        "       -d '{\"text\": \"The river rose overnight. Farmers moved their herds to higher ground.\"}' \\",
        f"       {url}/api/v1/summarization",
        "  # transcribe a WAV file",
        f"  curl -s -H 'Authorization: Bearer {key}' -F audio=@speech.wav {url}/api/v1/transcription",
        "  # speak text",
        f"  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
        f"       -d '{{\"text\": \"Hello from the subnet.\"}}' {url}/api/v1/tts",
        "  # then wait for the result (TTS answers are audio files, FLAC from the reference miners: add -o out.flac)",
        f"  curl -s -H 'Authorization: Bearer {key}' '{url}/api/v1/task/TASK_ID/result?wait=30'",
        f"  # miners and their scores: curl -s {url}/api/v1/miners   API docs: {url}/docs",
        "",
    ])
