"""Admin endpoints: create (with its limits and daily quotas), list and revoke client API keys (admin key only)."""

from __future__ import annotations

from aiohttp import web

from subnet_proxy.api.schemas import KeyCreate, KeyCreated, KeyList, KeyView, WebhookSecretSet, WebhookSecretView
from subnet_proxy.keys import ApiKey, Role, new_webhook_secret
from subnet_proxy.server.body import read_json
from subnet_proxy.server.context import ctx
from subnet_proxy.server.routing import Endpoint, QueryParam

_ADMIN_BODY_LIMIT = 16 * 1024


def key_view(api_key: ApiKey) -> KeyView:
    return KeyView(key_id=api_key.key_id, name=api_key.name, role=api_key.role.value, rate_per_s=api_key.rate_per_s,
                   burst=api_key.burst, max_in_flight=api_key.max_in_flight, daily_tasks=api_key.daily_tasks,
                   daily_audio_s=api_key.daily_audio_s, daily_chars=api_key.daily_chars,
                   created_at=api_key.created_at, revoked_at=api_key.revoked_at,
                   webhook_secret_set=api_key.webhook_secret is not None)


async def create_key(request: web.Request) -> web.Response:
    req = await read_json(request, KeyCreate, _ADMIN_BODY_LIMIT)
    api_key, plaintext = await ctx(request).keys.create(name=req.name, role=Role(req.role), rate_per_s=req.rate_per_s,
                                                         burst=req.burst, max_in_flight=req.max_in_flight,
                                                         daily_tasks=req.daily_tasks,
                                                         daily_audio_s=req.daily_audio_s, daily_chars=req.daily_chars,
                                                         webhook_secret=req.webhook_secret)
    body = KeyCreated(**key_view(api_key).model_dump(), key=plaintext)
    return web.json_response(body.model_dump(mode="json"), status=201)


async def list_keys(request: web.Request) -> web.Response:
    include = request.query.get("include_revoked", "false").lower() in ("1", "true", "yes")
    keys = await ctx(request).keys.list(include_revoked=include)
    return web.json_response(KeyList(keys=[key_view(k) for k in keys]).model_dump(mode="json"))


async def revoke_key(request: web.Request) -> web.Response:
    context = ctx(request)
    api_key = await context.keys.revoke(request.match_info["key_id"])
    context.key_cache.clear()  # revocation takes effect at once on this instance
    return web.json_response(key_view(api_key).model_dump(mode="json"))


async def set_webhook_secret(request: web.Request) -> web.Response:
    """The key's webhook secret, as given or made here; shown in the answer (the admin hands it on)."""
    req = await read_json(request, WebhookSecretSet, _ADMIN_BODY_LIMIT)
    secret = req.secret or new_webhook_secret()
    api_key = await ctx(request).keys.set_webhook_secret(request.match_info["key_id"], secret)
    body = WebhookSecretView(key_id=api_key.key_id, webhook_secret=secret)
    return web.json_response(body.model_dump(mode="json"))


async def clear_webhook_secret(request: web.Request) -> web.Response:
    api_key = await ctx(request).keys.set_webhook_secret(request.match_info["key_id"], None)
    return web.json_response(key_view(api_key).model_dump(mode="json"))


_ADMIN_ERRORS = (401, 403, 429)

ENDPOINTS = [
    Endpoint("POST", "/api/v1/admin/keys", create_key, "Create an API key", "admin", "admin",
             body={"application/json": KeyCreate}, status=201, response={"application/json": KeyCreated},
             errors=(*_ADMIN_ERRORS, 400, 408, 415)),
    Endpoint("GET", "/api/v1/admin/keys", list_keys, "List API keys", "admin", "admin",
             response={"application/json": KeyList}, errors=_ADMIN_ERRORS,
             query=(QueryParam("include_revoked", {"type": "boolean"}, "Also list revoked keys."),)),
    Endpoint("DELETE", "/api/v1/admin/keys/{key_id}", revoke_key, "Revoke an API key", "admin", "admin",
             response={"application/json": KeyView}, errors=(*_ADMIN_ERRORS, 404)),
    Endpoint("PUT", "/api/v1/admin/keys/{key_id}/webhook_secret", set_webhook_secret,
             "Set a key's webhook secret", "admin", "admin", body={"application/json": WebhookSecretSet},
             response={"application/json": WebhookSecretView}, errors=(*_ADMIN_ERRORS, 400, 404, 408, 415),
             description="The secret that signs this key's webhook events from now on (absent: one is generated). "
                         "Events of keys without one are signed with the validator's secret."),
    Endpoint("DELETE", "/api/v1/admin/keys/{key_id}/webhook_secret", clear_webhook_secret,
             "Clear a key's webhook secret", "admin", "admin", response={"application/json": KeyView},
             errors=(*_ADMIN_ERRORS, 404), description="The key's events are signed with the validator's secret "
                                                       "again."),
]
