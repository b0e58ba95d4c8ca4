"""Decode cost is bounded by samples and memory at the door: the six-upload attack of issue 13.

A FLAC of 599 s of silence at 192 kHz is about 363 KB and expands to 115 M samples (0.46 GB as
float32, about 0.9 GB while decoded the old way). Six of them in parallel from one key took a
validator from 0.7 to 5.6 GB. Now such a file is refused from its header (more samples than the
bound), a file within the bound is checked block by block without keeping its samples, and one
key has a budget of concurrent decodes.
"""

from __future__ import annotations

import asyncio
import io
import resource
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from protocol import AudioTooLargeError, b64encode, decode_audio, encode_audio, probe_audio
from subnet_proxy.server.decoding import DecodeBudget
from subnet_proxy.server.errors import ApiError
from subnet_proxy.tasks import TaskKind
from tests.server.conftest import auth, error_of, start_harness, stop_harness
from tests.server.test_submit import audio_form

#: what the six uploads may add to the server process's resident memory (measured after the fix:
#: 2-10 MB; before it, one upload alone added about 0.9 GB).
RSS_BOUND_MB = 64
UPLOADS = 6


def silent_flac(seconds: float, rate: int) -> bytes:
    """A FLAC of silence written block by block (the samples are never all in memory here either)."""
    buf = io.BytesIO()
    block = np.zeros(rate, dtype=np.int16)
    with sf.SoundFile(buf, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        whole, rest = divmod(seconds, 1)
        for _ in range(int(whole)):
            out.write(block)
        out.write(block[:int(rest * rate)])
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return silent_flac(599, 192_000)


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


class PeakRSS:
    """The process's resident memory sampled every 5 ms on a thread: the peak over a block."""

    def __init__(self) -> None:
        self.peak = self.start = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return self.peak - self.start


def test_the_bomb_is_refused_from_its_header(bomb):
    assert len(bomb) < 400_000  # the attack's size: ~363 KB
    with pytest.raises(AudioTooLargeError) as refused:
        probe_audio(bomb, max_seconds=600)
    assert refused.value.limit_s == pytest.approx(300.0)  # 57.6 M samples at 192 kHz mono


async def test_six_parallel_bombs_from_one_key_keep_memory_bounded_and_health_up(tmp_path, bomb):
    h = await start_harness(tmp_path, max_audio_s=600.0, max_upload_mb=1.0)
    try:
        async def upload() -> tuple[int, str]:
            resp = await h.client.post("/api/v1/transcription", data=audio_form(bomb), headers=auth())
            return resp.status, await error_of(resp) if resp.status >= 400 else ""

        with PeakRSS() as rss:
            uploads = [asyncio.ensure_future(upload()) for _ in range(UPLOADS)]
            health = await h.client.get("/api/v1/health")
            assert health.status == 200
            answers = await asyncio.gather(*uploads)
        # each is refused: from its header (413), or, while two of the key's checks still run, at once
        # with 429 decode_busy (how many overlap depends on the machine's speed); none is taken
        assert set(answers) <= {(413, "audio_too_long"), (429, "decode_busy")}
        assert (413, "audio_too_long") in answers
        assert rss.growth_mb < RSS_BOUND_MB, f"RSS grew {rss.growth_mb:.0f} MB"
        print(f"six bombs: RSS growth {rss.growth_mb:.1f} MB (bound {RSS_BOUND_MB})")
    finally:
        await stop_harness(h)


async def test_a_long_high_rate_file_within_the_bound_is_checked_without_keeping_its_samples(tmp_path):
    audio = silent_flac(120, 192_000)  # 23 M samples: accepted, 92 MB if it were held as float32
    h = await start_harness(tmp_path, max_audio_s=600.0, max_upload_mb=1.0)
    try:
        with PeakRSS() as rss:
            resp = await h.client.post("/api/v1/transcription", data=audio_form(audio), headers=auth())
            assert resp.status == 202, await resp.text()
        assert rss.growth_mb < 40, f"RSS grew {rss.growth_mb:.0f} MB"
    finally:
        await stop_harness(h)


def test_the_miners_own_decode_refuses_the_bomb_from_its_header(bomb):
    """The miner decodes its input with ``decode_audio``'s default sample bound (and its length limit)."""
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(AudioTooLargeError):
        decode_audio(bomb, max_seconds=600)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024 < 32  # peak, in MB


async def test_a_miners_tts_delivery_is_checked_at_protocol_rates_and_only_once(harness):
    task = await harness.distributed_task(kind=TaskKind.TTS, text="Speak.")
    high = silent_flac(1, 192_000)
    miner = harness.neurons.miner_1
    resp = await harness.signed("POST", "/api/v1/miner/response", miner,
                                {"task_id": task.task_id, "audio_b64": b64encode(high)})
    assert resp.status == 400 and await error_of(resp) == "invalid_audio"
    good = encode_audio(np.zeros(16_000, dtype=np.float32) + 0.1, 16_000, "wav")
    resp = await harness.signed("POST", "/api/v1/miner/response", miner,
                                {"task_id": task.task_id, "audio_b64": b64encode(good)})
    assert resp.status == 200, await resp.text()
    resp = await harness.signed("POST", "/api/v1/miner/response", miner,
                                {"task_id": task.task_id, "audio_b64": b64encode(high)})
    assert resp.status == 409 and await error_of(resp) == "already_answered"  # refused before decoding


async def test_one_key_has_a_budget_of_concurrent_decodes():
    budget = DecodeBudget(per_key=2, workers=1)
    audio = silent_flac(60, 48_000)
    probes = [asyncio.ensure_future(budget.probe("key-a", audio, max_seconds=600)) for _ in range(3)]
    other = asyncio.ensure_future(budget.probe("key-b", audio, max_seconds=600))
    done = await asyncio.gather(*probes, other, return_exceptions=True)
    refused = [r for r in done if isinstance(r, ApiError)]
    assert len(refused) == 1 and refused[0].status == 429 and refused[0].code == "decode_busy"
    assert done[3].duration_s == 60.0  # another key is not held back by key-a's spent budget
    assert budget._running == {}
