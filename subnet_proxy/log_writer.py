"""The log handler every entry point installs: records are formatted and written on one writer thread, in batches.

Why: the side-server writes one access-log line per request. A ``StreamHandler`` formatted each line
and wrote it with its own write and flush on the event loop: about a quarter of a submit's cost at 64
connections (issue 16). Here ``emit`` appends the record to a deque; the writer thread wakes every
``INTERVAL_S`` (or when ``BATCH`` records wait), formats all that is queued and writes the lines with
one write and one flush. It does not wake per record: a thread woken for each line takes the GIL
from the event loop thousands of times a second, which measured no cheaper than writing inline.

Nothing is dropped: the deque has no bound (the writer drains ``BATCH`` records per write, far more
than a server produces in ``INTERVAL_S``), ``flush`` returns once everything queued before it is
written, and ``close`` (also run by ``logging.shutdown`` at interpreter exit) writes what is queued
before the thread ends; a record emitted after ``close`` is written at once by its caller. A process
killed outright loses at most its last ``INTERVAL_S`` of lines. A message with arguments is merged
when it is emitted, so an argument changed afterwards cannot change the line; a message without
arguments is turned into text by the writer (the access log passes an object whose ``str`` is its
JSON, so even that encoding leaves the event loop).
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import IO

#: records waiting that wake the writer before its interval is up.
BATCH = 2048
#: seconds between the writer's rounds.
INTERVAL_S = 0.1
#: seconds ``flush`` waits for the writer (a stream that blocks longer is not worth hanging a shutdown for).
FLUSH_TIMEOUT_S = 10.0


class _Stop:
    """Queued by ``close``: the writer ends after writing what came before it."""


class BackgroundHandler(logging.Handler):
    """A stream handler whose formatting and writing happen on its own thread (see the module's docstring)."""

    def __init__(self, stream: IO[str], formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.stream = stream
        self._pending: collections.deque[logging.LogRecord | threading.Event | _Stop] = collections.deque()
        self._wake = threading.Event()
        self._closed = False
        self._closing = threading.Lock()  # a record is queued before the writer's stop, or written by its caller
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``Handler.handle``, without the handler's lock: the deque is thread-safe."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.args:
                record.msg, record.args = record.getMessage(), None
        except Exception:  # a message that does not format: reported as logging reports it
            self.handleError(record)
            return
        with self._closing:
            if not self._closed:
                self._pending.append(record)
                if len(self._pending) >= BATCH:
                    self._wake.set()
                return
        self._write([record])

    def flush(self) -> None:
        """Return once every record emitted before this call is written (or after ``FLUSH_TIMEOUT_S``)."""
        if self._closed or threading.current_thread() is self._thread:
            return
        written = threading.Event()
        self._pending.append(written)
        self._wake.set()
        written.wait(FLUSH_TIMEOUT_S)

    def close(self) -> None:
        """Write what is queued, then end the writer thread; later records are written by their callers."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._pending.append(_Stop())
            self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(FLUSH_TIMEOUT_S)
        super().close()

    def _run(self) -> None:
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()  # before draining: whatever sets it later is drained next round
            records: list[logging.LogRecord] = []
            done: list[threading.Event] = []
            stop = False
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, logging.LogRecord):
                    records.append(item)
                    if len(records) >= BATCH:
                        self._write(records)
                        records = []
                elif isinstance(item, threading.Event):
                    done.append(item)
                else:
                    stop = True
            self._write(records)
            for event in done:
                event.set()
            if stop:
                return
    def _write(self, records: list[logging.LogRecord]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record) + "\n")
            except Exception:
                self.handleError(record)
        if not lines:
            return
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:
            self.handleError(records[-1])
