"""``GET /api/v1/usage``: what a key used (tasks, input audio seconds, input characters) by kind and UTC day.

Read from the counters the door keeps (``quota``, ``UsageCounters``): a report reads a key's few
rows a day, never its tasks. A client sees its own key; an admin sees every key, or one with ``key``
(a Firebase user's owner id ``fb:<uid>`` too: it has counters but no key record).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from subnet_proxy.api.usage import DayUsage, KeyUsage, QuotaView, UsageAmounts, UsageReport
from subnet_proxy.keys import ApiKey, Role
from subnet_proxy.keys.firebase import FIREBASE_OWNER_PREFIX
from subnet_proxy.server.auth import API_KEY
from subnet_proxy.server.body import parse_query
from subnet_proxy.server.context import ctx
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.routing import Endpoint, QueryParam
from subnet_proxy.store.base import Usage, UsageRow
from subnet_proxy.tasks import utcnow

MAX_DAYS = 366


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(7, ge=1, le=MAX_DAYS)
    key: str | None = Field(None, min_length=1, max_length=64)


def _amounts(usage: Usage) -> UsageAmounts:
    return UsageAmounts(tasks=usage.tasks, audio_s=round(usage.audio_s, 3), chars=usage.chars)


def _by_kind(rows: list[UsageRow]) -> dict[str, UsageAmounts]:
    kinds: dict[str, Usage] = defaultdict(Usage)
    for row in rows:
        kinds[row.kind] += row.usage
    return {kind: _amounts(used) for kind, used in sorted(kinds.items())}


def _quota(api_key: ApiKey) -> QuotaView | None:
    if api_key.daily_tasks is None and api_key.daily_audio_s is None and api_key.daily_chars is None:
        return None
    return QuotaView(daily_tasks=api_key.daily_tasks, daily_audio_s=api_key.daily_audio_s,
                     daily_chars=api_key.daily_chars)


def key_usage(key_id: str, rows: list[UsageRow], api_key: ApiKey | None) -> KeyUsage:
    """One key's report from its counter rows (any order)."""
    by_day: dict[date, list[UsageRow]] = defaultdict(list)
    total = Usage()
    for row in rows:
        by_day[row.day].append(row)
        total += row.usage
    days = [DayUsage(day=day, total=_amounts(sum((r.usage for r in day_rows), Usage())), kinds=_by_kind(day_rows))
            for day, day_rows in sorted(by_day.items())]
    return KeyUsage(key_id=key_id, name=api_key.name if api_key else None, total=_amounts(total),
                    kinds=_by_kind(rows), days=days, quota=_quota(api_key) if api_key else None)


async def get_usage(request: web.Request) -> web.Response:
    query = parse_query(request, UsageQuery)
    caller, context = request[API_KEY], ctx(request)
    until = utcnow().date()
    since = until - timedelta(days=query.days - 1)
    keys: dict[str, ApiKey | None]
    if caller.role is not Role.ADMIN:
        if query.key not in (None, caller.key_id):
            raise ApiError(403, "admin_only", "a client key sees its own usage only")
        keys = {caller.key_id: caller}
    elif query.key is not None and query.key.startswith(FIREBASE_OWNER_PREFIX):
        keys = {query.key: None}  # a Firebase user: no record (its name and quota are none)
    elif query.key is not None:
        keys = {query.key: await context.keys.get(query.key)}
    else:
        keys = {k.key_id: k for k in await context.keys.list(include_revoked=True)}
    owner = None if caller.role is Role.ADMIN and query.key is None else next(iter(keys))
    rows: dict[str, list[UsageRow]] = defaultdict(list)
    for row in await context.store.usage(since=since, owner=owner):
        rows[row.owner].append(row)
    shown = sorted(rows) if owner is None else [owner]
    report = UsageReport(since=since, until=until, keys=[key_usage(k, rows[k], keys.get(k)) for k in shown])
    return web.json_response(report.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint("GET", "/api/v1/usage", get_usage, "Tasks, audio seconds and characters used, by kind and UTC day",
             "client", "usage", response={"application/json": UsageReport}, errors=(400, 401, 403, 404, 429),
             query=(QueryParam("days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                               "UTC days counted, today included (7)."),
                    QueryParam("key", {"type": "string"},
                               "Admin keys: only this key id (else every key with usage). A client key may name "
                               "only itself (403 admin_only otherwise).")),
             description="Counted at submission: every accepted task adds 1 task, its input audio's seconds and "
                         "its input text's characters to its key's day; an idempotent replay counts once. A client "
                         "sees its own key (with its daily quota, if any); an admin every key with usage in the "
                         "window, or one key (404 key_not_found when unknown; a Firebase user by its owner id "
                         "fb:<uid>)."),
]
