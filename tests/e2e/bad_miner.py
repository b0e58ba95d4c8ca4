"""A dishonest miner for the end-to-end tests: a stock bittensor axon that answers at once, wrongly.

Transcripts and summaries are unrelated text, speech is a pure tone. It registers itself in the
local chain like the reference miner does, and serves until SIGTERM.

Run: python -m tests.e2e.bad_miner --chain-file F --netuid N --data-dir D --name bad0 --port P
"""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import argparse
import signal
import threading

import bittensor as bt
import numpy as np

from protocol import SummarizationSynapse, TranscriptionSynapse, TTSSynapse, b64encode, encode_audio
from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.offline import pin_external_ip
from subnet_proxy.wallets import local_wallet

NONSENSE = "Purple elephants juggle seven teapots while the moon hums quietly over the desert."
RATE = 16_000
TONE = encode_audio((0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * RATE) / RATE)).astype(np.float32), RATE, "wav")


async def transcribe(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
    synapse.transcript = NONSENSE
    return synapse


async def speak(synapse: TTSSynapse) -> TTSSynapse:
    synapse.audio_b64 = b64encode(TONE)
    synapse.audio_format = "wav"
    synapse.audio_sample_rate = RATE
    return synapse


async def summarize(synapse: SummarizationSynapse) -> SummarizationSynapse:
    synapse.summary = NONSENSE
    return synapse


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--chain-file", "--data-dir", "--name"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--netuid", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    pin_external_ip("127.0.0.1")
    from pathlib import Path

    wallet = local_wallet(Path(args.data_dir), args.name)
    axon = bt.Axon(wallet=wallet, ip="127.0.0.1", port=args.port, external_ip="127.0.0.1", external_port=args.port)
    axon.attach(forward_fn=transcribe).attach(forward_fn=speak).attach(forward_fn=summarize)
    axon.start()
    chain = LocalChain(Path(args.chain_file), netuid=args.netuid)
    chain.register_sync(Registration.of_wallet(wallet, ip="127.0.0.1", port=args.port))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    axon.stop()


if __name__ == "__main__":
    main()
