"""Cheap unique ids for tasks and requests: a random per-process prefix plus a counter.

``uuid4`` costs a ``getrandom`` system call per id, which measured here as the largest single cost
of a submit under load (two per request). Ids only need to be unique, not secret: a client can read
only its own tasks (404 otherwise), so the 64 random bits of the prefix keep instances sharing one
store apart and the counter keeps ids apart within an instance.
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
