"""Cheap unique request ids (the ``X-Request-Id`` echoed on every answer): a random per-process prefix plus a counter.

Request ids only need to be unique, not unpredictable: the 64 random bits of the prefix keep
instances sharing one log apart and the counter keeps ids apart within an instance, with no
system call per id. Task ids are not made here: miners see them on the wire, where a prefix and a
counter would set client tasks apart from synthetic challenges, so every task id comes from
``subnet_proxy.tasks.new_task_id`` (random, with nothing per source).
"""

from __future__ import annotations

import itertools
import os


class IdSource:
    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        """32 lowercase hex characters, like a uuid4 hex."""
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"
