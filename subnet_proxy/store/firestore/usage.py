"""The Firestore store's ``UsageCounters``: one document per key and UTC day, counted by increments.

``usage/{owner~day}`` holds the day's totals (``tasks``, ``audio_s``, ``chars``) and one map per
kind (``kinds.<kind>.tasks`` ...). A count is one write of server-side increments to both, which
needs no read and no transaction, and whose results are the totals after it: so a quota check is
"count, then give back if over". Of concurrent counts against one quota, each one kept saw totals
that included every count before it, so the kept ones never sum beyond the quota; a count racing
one that is given back may be refused while that one is still counted (one round trip), and a
process that dies between the two leaves the refused count in (the day's counter overstates).
One document per key and day: Firestore sustains about one write a second per document, so a key
submitting faster than that pays contention latency on its counter (sharding the counter would
make the totals a read of every shard).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.field_path import FieldPath

from subnet_proxy.store.base import Usage, UsageCounters, UsageLimits, UsageRow
from subnet_proxy.store.firestore import codec
from subnet_proxy.store.firestore.core import FirestoreCore

_MEASURES = ("tasks", "audio_s", "chars")


def _usage(fields: dict[str, Any]) -> Usage:
    return Usage(int(fields.get("tasks", 0)), float(fields.get("audio_s", 0.0)), int(fields.get("chars", 0)))


class FirestoreUsage(FirestoreCore, UsageCounters):
    """The ``usage`` collection."""

    async def _increment(self, ref: Any, owner: str, kind: str, day: date, used: Usage) -> Usage:
        """Add ``used`` to the day's totals and the kind's map in one write; the totals after it."""
        amounts = dict(zip(_MEASURES, (used.tasks, used.audio_s, used.chars), strict=True))
        increments = {name: firestore.Increment(amount) for name, amount in amounts.items()}
        written = await ref.set({"owner": owner, "day": day.isoformat(), **increments,
                                 "kinds": {kind: dict(increments)}}, merge=True)
        # the write's transform results come in field-path order; the totals are the top-level ones
        paths = sorted([FieldPath(name) for name in _MEASURES] + [FieldPath("kinds", kind, n) for n in _MEASURES])
        values = {path: _helpers.decode_value(value, self._client)
                  for path, value in zip(paths, written.transform_results, strict=True)}
        return _usage({name: values[FieldPath(name)] for name in _MEASURES})

    async def count_usage(self, owner: str, kind: str, used: Usage, *, day: date,
                          limits: UsageLimits | None = None) -> tuple[bool, Usage | None]:
        ref = self._col.usage.document(codec.doc_id(owner, day.isoformat()))
        totals = await self._increment(ref, owner, kind, day, used)
        if limits is None:
            return True, None
        if limits.exceeded(totals):
            await self._increment(ref, owner, kind, day, -used)
            return False, totals
        return True, totals

    async def usage(self, *, since: date, owner: str | None = None) -> list[UsageRow]:
        query = self._col.usage.where(filter=firestore.FieldFilter("day", ">=", since.isoformat()))
        if owner is not None:
            query = query.where(filter=firestore.FieldFilter("owner", "==", owner))
        rows = []
        async for snap in query.stream():
            doc = snap.to_dict()
            for kind, fields in doc.get("kinds", {}).items():
                rows.append(UsageRow(doc["owner"], date.fromisoformat(doc["day"]), kind, _usage(fields)))
        return sorted(rows, key=lambda r: (r.owner, r.day, r.kind))
