"""The side-server's audio checks, run within a decode budget: per key, and for the whole process.

Decoding is the one request cost that grows with what the sender *claims* rather than what it
sends: a 363 KB FLAC can ask for 115 M samples. ``protocol.probe_audio`` bounds one decode
(samples from the header, then block by block without keeping them); this bounds how many run:

- per key (an API key, or a signing hotkey's ``hotkey:...``): at most ``--proxy.decodes_per_key``
  at once; one more is refused with 429 ``decode_busy`` at once (retry shortly), so one client
  cannot fill the decoders with its own uploads;
- per process: at most ``--proxy.decode_workers`` decodes run together (one more waits its turn),
  so decoding never takes every core from the event loop and the health check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from protocol import AudioInfo, probe_audio
from subnet_proxy.server.errors import ApiError


@dataclass(slots=True)
class DecodeBudget:
    per_key: int
    workers: int
    _running: dict[str, int] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    async def probe(self, owner: str, audio: bytes, *, max_seconds: float, max_rate: int | None = None) -> AudioInfo:
        """``probe_audio`` in a worker thread, counted against ``owner``'s budget (429 when spent)."""
        if self._running.get(owner, 0) >= self.per_key:
            raise ApiError(429, "decode_busy", f"at most {self.per_key} audio files are checked at once per caller; "
                                               "retry when one has finished", headers={"Retry-After": "1"})
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self._running[owner] = self._running.get(owner, 0) + 1
        try:
            async with self._slots:
                kwargs = {} if max_rate is None else {"max_rate": max_rate}
                return await asyncio.to_thread(probe_audio, audio, max_seconds=max_seconds, **kwargs)
        finally:
            left = self._running.pop(owner) - 1
            if left:
                self._running[owner] = left
