"""The ScoreBook: what this validator believes of each uid, kept across restarts.

Per uid: an exponential moving average of rewards (the basis of weights), an EMA of the latency of
answered requests, the outcomes of the last requests (recent success rate), the attempt count and
the run of consecutive failures (miner selection backs off on it), and the last weight set.

The metagraph is the authority on who holds a uid: ``sync(snapshot)`` grows the book when the
subnet grows and starts a uid from zero when its hotkey changes, so a new owner never inherits the
old one's score. A reward is only applied when its hotkey still holds the uid; a late answer from
a replaced miner is dropped. The book is saved atomically (tmp file + ``os.replace``) and restored
on start; a file that cannot be read is moved aside, never overwritten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from subnet_proxy.atomic_file import write_json_atomic
from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.config import Settings
from subnet_proxy.tasks import MinerStat

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: EMA weight of a new latency sample (latency moves faster than quality).
LATENCY_ALPHA = 0.2
#: outcomes kept for the recent success rate.
SUCCESS_WINDOW = 20


def scores_path(settings: Settings) -> Path:
    """Where a validator keeps its book: ``DATA_DIR/scores/netuid-NETUID.json``."""
    return settings.data_dir / "scores" / f"netuid-{settings.netuid}.json"


@dataclass
class UidRecord:
    hotkey: str
    ema: float = 0.0
    latency_s: float | None = None
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=SUCCESS_WINDOW))
    attempts: int = 0
    consecutive_failures: int = 0
    last_weight: float | None = None
    #: the row last built from this record; dropped on every change (rows are asked for per task).
    cached: MinerStat | None = field(default=None, repr=False, compare=False)

    def stat(self, uid: int) -> MinerStat:
        if self.cached is None:
            self.cached = self._build_stat(uid)
        return self.cached

    def _build_stat(self, uid: int) -> MinerStat:
        rate = sum(self.outcomes) / len(self.outcomes) if self.outcomes else None
        return MinerStat(uid=uid, hotkey=self.hotkey, ema_score=self.ema, latency_s=self.latency_s,
                         success_rate=rate, last_weight=self.last_weight, attempts=self.attempts,
                         consecutive_failures=self.consecutive_failures)

    def to_json(self) -> dict[str, Any]:
        return {"hotkey": self.hotkey, "ema": self.ema, "latency_s": self.latency_s, "outcomes": list(self.outcomes),
                "attempts": self.attempts, "consecutive_failures": self.consecutive_failures,
                "last_weight": self.last_weight}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UidRecord:
        ema = float(data["ema"])
        return cls(hotkey=str(data["hotkey"]), ema=ema if math.isfinite(ema) else 0.0,
                   latency_s=None if data.get("latency_s") is None else float(data["latency_s"]),
                   outcomes=deque((bool(o) for o in data.get("outcomes", [])), maxlen=SUCCESS_WINDOW),
                   attempts=int(data.get("attempts", 0)), consecutive_failures=int(data.get("consecutive_failures", 0)),
                   last_weight=None if data.get("last_weight") is None else float(data["last_weight"]))


class ScoreBook:
    """Per-uid scores, indexed by uid; ``path`` is where it is saved (None: memory only)."""

    def __init__(self, *, alpha: float, path: Path | None = None) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.path = path
        self._records: list[UidRecord] = []
        self._dirty = False
        self._save_lock = asyncio.Lock()

    @classmethod
    def restore(cls, path: Path, *, alpha: float) -> ScoreBook:
        """The book saved at ``path``; an empty one if there is none or it cannot be read (moved aside)."""
        book = cls(alpha=alpha, path=path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown format {data.get('format')!r}")
            book._records = [UidRecord.from_json(r) for r in data["uids"]]
        except FileNotFoundError:
            return book
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = path.with_name(f"{path.name}.unreadable-{time.time_ns()}")
            log.error("score book %s cannot be read (%s); moved to %s, starting from zero", path, exc, aside)
            try:
                os.replace(path, aside)
            except OSError as move_exc:
                log.error("could not move %s aside: %s", path, move_exc)
            book._records = []
        return book

    @classmethod
    def for_settings(cls, settings: Settings) -> ScoreBook:
        """The validator's book for its netuid, restored from ``scores_path``; alpha from the settings."""
        return cls.restore(scores_path(settings), alpha=settings.neuron.moving_average_alpha)

    # -- the metagraph -----------------------------------------------------------------------------

    def sync(self, snapshot: MetagraphSnapshot) -> list[int]:
        """Follow the metagraph: grow with it, and reset every uid whose hotkey changed (returned)."""
        reset: list[int] = []
        records: list[UidRecord] = []
        for uid in range(snapshot.n):
            neuron = snapshot.by_uid(uid)
            hotkey = neuron.hotkey if neuron is not None else ""
            old = self._records[uid] if uid < len(self._records) else None
            if old is not None and old.hotkey == hotkey:
                records.append(old)
                continue
            if old is not None:
                reset.append(uid)
                log.info("uid %d changed hotkey (%s -> %s): its score starts from zero", uid, old.hotkey, hotkey)
            records.append(UidRecord(hotkey=hotkey))
        if reset or len(records) != len(self._records):
            self._dirty = True
        self._records = records
        return reset

    @property
    def n(self) -> int:
        return len(self._records)

    def hotkey(self, uid: int) -> str | None:
        return self._records[uid].hotkey if 0 <= uid < len(self._records) else None

    # -- updates -----------------------------------------------------------------------------------

    def update(self, uid: int, hotkey: str, reward: float, *, latency_s: float | None = None,
               success: bool | None = None) -> bool:
        """Fold one reward (in [0, 1]) into the uid's EMA; False when the hotkey no longer holds the uid.

        ``success`` (default: reward > 0) feeds the success rate and the failure run; ``latency_s``
        is the time the miner took to answer (None when it did not).
        """
        record = self._records[uid] if 0 <= uid < len(self._records) else None
        if record is None or record.hotkey != hotkey:
            log.debug("reward for uid %d dropped: hotkey %s does not hold it", uid, hotkey)
            return False
        if not math.isfinite(reward):
            log.warning("non-finite reward %r for uid %d counted as 0", reward, uid)
            reward = 0.0
        reward = min(1.0, max(0.0, reward))
        ok = reward > 0 if success is None else success
        record.cached = None
        record.ema = (1 - self.alpha) * record.ema + self.alpha * reward
        record.attempts += 1
        record.outcomes.append(ok)
        record.consecutive_failures = 0 if ok else record.consecutive_failures + 1
        if latency_s is not None and math.isfinite(latency_s) and latency_s >= 0:
            record.latency_s = latency_s if record.latency_s is None else (
                (1 - LATENCY_ALPHA) * record.latency_s + LATENCY_ALPHA * latency_s)
        self._dirty = True
        return True

    def record_weights(self, uids: Sequence[int], weights: Sequence[float], *,
                       computed_for: Mapping[int, str] | None = None) -> None:
        """Remember the weights last set (shown by the miners endpoint); uids not named get 0.
        ``computed_for`` (uid -> hotkey when the weights were computed): a uid whose hotkey changed
        while they were being set keeps none, as they were its previous holder's."""
        by_uid = dict(zip((int(u) for u in uids), (float(w) for w in weights), strict=True))
        for uid, record in enumerate(self._records):
            if computed_for is not None and computed_for.get(uid) != record.hotkey:
                continue
            record.last_weight = by_uid.get(uid, 0.0)
            record.cached = None
        self._dirty = True

    # -- reading -----------------------------------------------------------------------------------

    def scores(self) -> np.ndarray:
        """The EMA of every uid, indexed by uid (float64, finite, in [0, 1])."""
        return np.array([r.ema for r in self._records], dtype=np.float64)

    def stats(self) -> list[MinerStat]:
        """One row per uid: the public ``GET /api/v1/miners`` listing and the selection input."""
        return [record.stat(uid) for uid, record in enumerate(self._records)]

    # -- persistence -------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._dirty

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "saved_at": time.time(), "uids": [r.to_json() for r in self._records]}

    def save(self) -> None:
        """Write the book now (blocking: for shutdown and scripts; the loop uses ``persist``)."""
        if self.path is not None:
            write_json_atomic(self.path, self.to_json())
            self._dirty = False

    async def persist(self) -> None:
        """Save off the event loop if anything changed since the last save; saves never interleave."""
        if self.path is None or not self._dirty:
            return
        async with self._save_lock:
            data = self.to_json()  # taken on the loop: a consistent copy
            self._dirty = False
            try:
                await asyncio.to_thread(write_json_atomic, self.path, data)
            except OSError:
                self._dirty = True
                raise

