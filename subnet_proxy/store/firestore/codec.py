"""Firestore documents <-> task models: native timestamps where queries need them, no nested arrays.

Firestore cannot hold an array inside an array, and it orders ISO strings by text (pydantic drops
zero microseconds, so text order is not time order). So the fields a query filters or orders on are
native timestamps, ``assigned`` (a list of pairs) is stored as a list of maps, and everything else
keeps its JSON form, readable in the console as operators know it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from subnet_proxy.tasks import Evaluation, FinalResult, MinerResponse, Task

#: task fields stored as Firestore timestamps (queried or ordered on).
TASK_TIMES = ("created_at", "updated_at", "deadline", "lease_expires_at")
#: fields the codec adds to a task document for queries; dropped when decoding.
TASK_EXTRA = ("blob_keys",)

M = TypeVar("M", bound=BaseModel)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


def doc_id(*parts: str) -> str:
    """A deterministic document id for a compound key (task+hotkey, owner+idempotency key...).

    Readable ``a~b`` when every part is a plain token; otherwise (a ``/``, a leading ``__``, an
    over-long key) a SHA-256 of the parts, so no caller-chosen string can address another document.
    """
    if all(_SAFE_ID.match(p) and not p.startswith("__") for p in parts):
        return "~".join(parts)
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return f"h-{digest}"


def encode(model: BaseModel, *times: str) -> dict[str, Any]:
    """The model's JSON form, with the ``times`` fields as native timestamps (queried or ordered on)."""
    data = model.model_dump(mode="json")
    for name in times:
        data[name] = getattr(model, name)
    return data


def decode(model: type[M], data: Mapping[str, Any]) -> M:
    return model.model_validate(dict(data))


def encode_task(task: Task) -> dict[str, Any]:
    data = encode(task, *TASK_TIMES)
    data["assigned"] = [{"uid": uid, "hotkey": hotkey} for uid, hotkey in task.assigned]
    data["blob_keys"] = task.blob_keys
    return data


def decode_task(data: Mapping[str, Any]) -> Task:
    fields = {k: v for k, v in data.items() if k not in TASK_EXTRA}
    fields["assigned"] = [(a["uid"], a["hotkey"]) for a in fields.get("assigned", [])]
    return Task.model_validate(fields)


def encode_response(response: MinerResponse) -> dict[str, Any]:
    return encode(response, "received_at")


def encode_evaluation(evaluation: Evaluation) -> dict[str, Any]:
    return encode(evaluation, "created_at")


def encode_result(result: FinalResult) -> dict[str, Any]:
    return encode(result, "decided_at")
