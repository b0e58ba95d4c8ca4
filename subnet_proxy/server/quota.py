"""Usage counted at the door, and each key's daily quotas enforced there (429 ``quota_exceeded``).

Every accepted submission adds one task, its input audio seconds and its input characters to the
key's counter of the UTC day (``UsageCounters``), so ``GET /api/v1/usage`` reads counters instead
of scanning tasks. A key with quotas is counted with them: the store checks and counts in one
atomic step, so the submissions it lets through never sum beyond a quota, however many arrive at
once or on however many instances. The count comes before the task is stored and is given back
when no task was made (an idempotent replay, a failed create), so a replay counts once; a replay
refused by the quota is still answered with its task. Refused audio was already stored as a blob
(its length is known only once probed): nothing refers to it, so retention deletes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from subnet_proxy.keys import ApiKey
from subnet_proxy.server.errors import ApiError
from subnet_proxy.store.base import TaskStore, Usage, UsageCounters, UsageLimits
from subnet_proxy.tasks import TaskInput

QUOTA_EXCEEDED = "quota_exceeded"
_UNITS = {"tasks": "tasks", "audio_s": "seconds of audio", "chars": "characters of text"}


def usage_of(task_input: TaskInput) -> Usage:
    """What one task of any kind counts: itself, its input audio's seconds, its input text's characters."""
    return Usage(1, task_input.audio_seconds or 0.0, len(task_input.text or ""))


def limits_of(api_key: ApiKey) -> UsageLimits | None:
    """The key's daily quotas, None when it has none."""
    limits = UsageLimits(api_key.daily_tasks, api_key.daily_audio_s, api_key.daily_chars)
    return None if limits == UsageLimits() else limits


def seconds_to_next_day(now: datetime) -> int:
    """Whole seconds until the next UTC midnight (at least 1): when a day's quota starts over."""
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)
    return max(1, math.ceil((midnight - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class Charge:
    """One submission's count, to give back when it made no task."""

    counters: UsageCounters
    owner: str
    kind: str
    used: Usage
    day: date
    counted: bool

    async def give_back(self) -> None:
        if self.counted:
            await self.counters.count_usage(self.owner, self.kind, -self.used, day=self.day)


async def charge(store: TaskStore, api_key: ApiKey, kind: str, task_input: TaskInput, *,
                 idempotency_key: str | None, now: datetime) -> Charge:
    """Count a submission against its key's UTC day; past a quota, 429 ``quota_exceeded`` with a
    ``Retry-After`` until the next UTC day, unless it repeats a request (same Idempotency-Key) that
    made a task: that one counted already."""
    limits = limits_of(api_key)
    used, day = usage_of(task_input), now.date()
    counted, totals = await store.count_usage(api_key.key_id, kind, used, day=day, limits=limits)
    if counted or limits is None or totals is None:
        return Charge(store, api_key.key_id, kind, used, day, counted=counted)
    if idempotency_key is not None and await store.find_idempotent(api_key.key_id, idempotency_key) is not None:
        return Charge(store, api_key.key_id, kind, used, day, counted=False)
    caps = {"tasks": limits.tasks, "audio_s": limits.audio_s, "chars": limits.chars}
    over = ", ".join(f"{caps[name]:g} {_UNITS[name]}" for name in limits.exceeded(totals))
    raise ApiError(429, QUOTA_EXCEEDED, f"this key's daily quota is used up ({over} a UTC day); it starts over at "
                   "00:00 UTC", headers={"Retry-After": str(seconds_to_next_day(now))})
