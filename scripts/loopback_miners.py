"""Many lightweight miners on 127.0.0.1 in one process, speaking the bittensor axon wire protocol.

256 stock ``bt.Axon`` objects would be 256 uvicorn servers in 256 threads, which is too heavy for a
2-core machine and would measure the axons rather than the validator. Each miner here is one
aiohttp site on its own port with its own sr25519 hotkey that does what the axon does for a
request: checks the dendrite's signature (nonce, hotkeys, uuid, body hash), refuses a replayed
nonce per (hotkey, uuid), waits a fixed delay, fills the synapse's output and answers it as JSON
with the ``bt_header_*`` headers: a fixed summary; with ``--speech FILE`` (a WAV of ``--transcript``)
the transcript for a transcription synapse and, for a TTS synapse, that speech with a whisper of
noise of the miner's own (each miner's bytes differ, as two real miners' would). Both the stock
``bt.Dendrite`` and the fan-out client query it unchanged. ``GET /_received`` on any port lists
when each request arrived.

Run: ``python scripts/loopback_miners.py --count 256 --delay 0.1``; prints one JSON line
``{"miners": [{"hotkey": ..., "port": ...}, ...]}`` once every port listens, serves until stdin
closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import signal
import sys
import time
from pathlib import Path

from aiohttp import web
from bittensor_wallet import Keypair

SUMMARY = "The river rose; herds moved to higher ground."
#: leading characters of a request's text kept in the received log (benchmarks tag tasks there).
TAG_CHARS = 40


class LoopbackMiner:
    """One miner: its hotkey, its nonce table, its fixed answer delay, the log of what it received."""

    def __init__(self, index: int, delay: float, log: list[tuple[str, float]],
                 outputs: dict[str, dict[str, object]]) -> None:
        self.keypair = Keypair.create_from_seed(hashlib.sha256(f"loopback-miner-{index}".encode()).hexdigest())
        self.delay = delay
        self.nonces: dict[str, int] = {}
        self.log = log
        #: synapse name -> the output fields it is answered with.
        self.outputs = outputs

    def verify(self, headers: dict[str, str]) -> str | None:
        """None when the request is authentic; else why not (the axon answers 401)."""
        hotkey = headers.get("bt_header_dendrite_hotkey", "")
        uuid = headers.get("bt_header_dendrite_uuid", "")
        nonce = int(headers.get("bt_header_dendrite_nonce", "0"))
        body_hash = headers.get("computed_body_hash", "")
        key = f"{hotkey}:{uuid}"
        if nonce <= self.nonces.get(key, 0):
            return "Nonce is too old, a newer one was last processed"
        message = f"{nonce}.{hotkey}.{self.keypair.ss58_address}.{uuid}.{body_hash}"
        if not Keypair(ss58_address=hotkey).verify(message, headers.get("bt_header_dendrite_signature", "")):
            return "Signature mismatch"
        self.nonces[key] = nonce
        return None

    async def handle(self, request: web.Request) -> web.Response:
        started = time.time()
        problem = self.verify(dict(request.headers))
        if problem:
            return web.json_response({"message": problem}, status=401)
        body = await request.json()
        self.log.append((str(body.get("text", ""))[:TAG_CHARS], started))
        await asyncio.sleep(self.delay)
        body.update(self.outputs.get(str(body.get("name", "")), {}))
        axon = body.get("axon") or {}
        axon.update(status_code=200, status_message="Success", process_time=time.time() - started)
        body["axon"] = axon
        headers = {
            "name": str(body.get("name", "")),
            "bt_header_axon_status_code": "200",
            "bt_header_axon_status_message": "Success",
            "bt_header_axon_hotkey": self.keypair.ss58_address,
        }
        return web.json_response(body, headers=headers)


def outputs(index: int, speech: Path | None, transcript: str) -> dict[str, dict[str, object]]:
    """What miner ``index`` answers each synapse with."""
    answers: dict[str, dict[str, object]] = {"SummarizationSynapse": {"summary": SUMMARY}}
    if speech is not None:
        import numpy as np
        import soundfile

        samples, rate = soundfile.read(speech, dtype="float32")
        noisy = samples + np.random.default_rng(index).normal(0, 1e-3, samples.size).astype(np.float32)
        out = io.BytesIO()
        soundfile.write(out, noisy, rate, format="WAV", subtype="PCM_16")
        answers["TTSSynapse"] = {"audio_b64": base64.b64encode(out.getvalue()).decode(), "audio_format": "wav",
                                 "audio_sample_rate": rate}
        answers["TranscriptionSynapse"] = {"transcript": transcript}
    return answers


async def serve(count: int, delay: float, host: str, first: int = 0, speech: Path | None = None,
                transcript: str = "") -> None:
    log: list[tuple[str, float]] = []
    miners = [LoopbackMiner(first + i, delay, log, outputs(first + i, speech, transcript)) for i in range(count)]
    runners = []
    listing = []

    async def received(request: web.Request) -> web.Response:
        """(text tag, wall time received) of every request so far: the dispatch latency benchmark's probe."""
        return web.json_response(log)

    for miner in miners:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{name}", miner.handle)
        app.router.add_get("/_received", received)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, 0, backlog=512)
        await site.start()
        port = runner.addresses[0][1]
        runners.append(runner)
        listing.append({"hotkey": miner.keypair.ss58_address, "port": port})
    print(json.dumps({"miners": listing}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--first", type=int, default=0, help="Index of the first miner (several farms, distinct keys).")
    parser.add_argument("--delay", type=float, default=0.0, help="Seconds each miner waits before answering.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--speech", type=Path, help="A WAV file: TTS answers (noised per miner).")
    parser.add_argument("--transcript", default="", help="What --speech says: the transcription answer.")
    args = parser.parse_args()
    asyncio.run(serve(args.count, args.delay, args.host, args.first, args.speech, args.transcript))


if __name__ == "__main__":
    main()
