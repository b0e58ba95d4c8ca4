"""Typed per-request values every layer may read (kept apart so errors, auth and logging share them without cycles)."""

from __future__ import annotations

from aiohttp import web

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
#: who the request came from for the access log: an API key id or a hotkey, never a secret.
CALLER_ID: web.RequestKey[str] = web.RequestKey("caller_id", str)
