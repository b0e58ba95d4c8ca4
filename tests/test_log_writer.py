"""The log writer: every record from many threads is written, once, in order per thread; flush and close wait for it."""

from __future__ import annotations

import io
import logging
import threading

from subnet_proxy.log_writer import BackgroundHandler


def test_every_record_of_concurrent_writers_is_written_and_close_writes_what_is_queued() -> None:
    stream = io.StringIO()
    handler = BackgroundHandler(stream, logging.Formatter("%(threadName)s %(message)s"))
    logger = logging.getLogger("subnet_proxy.test.log_writer")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        def write(n: int) -> None:
            for i in range(n):
                logger.info("line %d", i)

        threads = [threading.Thread(target=write, args=(3000,), name=f"w{t}") for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        handler.flush()  # returns once all of them are written
        lines = stream.getvalue().splitlines()
        assert len(lines) == 12_000
        for t in range(4):  # each thread's lines, in its order
            assert [line.split()[2] for line in lines if line.startswith(f"w{t} ")] == [str(i) for i in range(3000)]
        logger.info("queued %s", "at close")
        handler.close()  # writes what is queued before the writer ends
        assert stream.getvalue().endswith("queued at close\n")
        logger.info("after close")  # written by the caller
        assert stream.getvalue().endswith("after close\n")
    finally:
        logger.removeHandler(handler)
        handler.close()
