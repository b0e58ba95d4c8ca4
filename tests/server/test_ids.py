"""Task and request ids: unique within and across instances, shaped like a uuid4 hex."""

from __future__ import annotations

import re

from subnet_proxy.server.ids import IdSource


def test_ids_are_unique_and_uuid_shaped() -> None:
    a, b = IdSource(), IdSource()
    ids = [a.next() for _ in range(10_000)] + [b.next() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
