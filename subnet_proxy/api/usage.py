"""The usage report's wire models (``GET /api/v1/usage``): what each key used, by kind and UTC day."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from subnet_proxy.api.schemas import Strict


class UsageAmounts(Strict):
    tasks: int = Field(0, description="Tasks accepted (an idempotent replay counts once).")
    audio_s: float = Field(0.0, description="Seconds of input audio.")
    chars: int = Field(0, description="Characters of input text.")


class DayUsage(Strict):
    day: date = Field(description="A UTC day.")
    total: UsageAmounts
    kinds: dict[str, UsageAmounts]


class QuotaView(Strict):
    """A key's daily quotas (null: no cap); past one, submissions are 429 quota_exceeded until 00:00 UTC."""

    daily_tasks: int | None = None
    daily_audio_s: float | None = None
    daily_chars: int | None = None


class KeyUsage(Strict):
    key_id: str
    name: str | None = Field(None, description="The key's name (null: a key no longer in the key store).")
    total: UsageAmounts
    kinds: dict[str, UsageAmounts]
    days: list[DayUsage] = Field(description="Days with any usage, oldest first.")
    quota: QuotaView | None = None


class UsageReport(Strict):
    since: date = Field(description="The first UTC day counted.")
    until: date = Field(description="The last UTC day counted (today).")
    keys: list[KeyUsage]
