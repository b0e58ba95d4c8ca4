"""Who is calling: API keys (or Firebase ID tokens) for clients and admins, signed requests for neurons.

Each endpoint declares one ``Auth`` mode; ``guard`` wraps its handler so authentication and the
per-caller limits run before the handler does. What the guard learned is left on the request
(``request[API_KEY]`` or ``request[CALLER]`` + ``request[BODY]``).

With ``--auth.firebase_project`` a bearer token shaped as a JWT is a Firebase ID token, checked by
``keys.firebase``; its user arrives as an ``ApiKey`` record (id ``fb:<uid>``), so the routes treat
both credentials alike. Any other token is an API key.
"""

from __future__ import annotations

import time
from typing import Literal

from aiohttp import web

from subnet_proxy.api.ws import KEY_PROTOCOL_PREFIX
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.keys import ApiKey, Role, hash_key
from subnet_proxy.keys.firebase import AuthUnavailable, FirebaseVerifier, TokenRejected, looks_like_jwt
from subnet_proxy.server.body import read_limited
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.errors import ApiError, Handler
from subnet_proxy.server.request_keys import CALLER_ID
from subnet_proxy.signing import HOTKEY_HEADER, MissingSignature

Auth = Literal["public", "client", "admin", "viewer", "miner", "validator"]

API_KEY: web.RequestKey[ApiKey] = web.RequestKey("api_key", ApiKey)
CALLER: web.RequestKey[Neuron] = web.RequestKey("caller", Neuron)
SNAPSHOT: web.RequestKey[MetagraphSnapshot] = web.RequestKey("snapshot", MetagraphSnapshot)
BODY: web.RequestKey[bytes] = web.RequestKey("body", bytes)

#: seconds an authenticated key is trusted without asking the key store again.
KEY_CACHE_TTL_S = 5.0
_KEY_CACHE_MAX = 10_000
#: signed bodies may carry base64 audio (4/3 of the raw size) plus JSON framing.
_SIGNED_BODY_FACTOR = 1.4


def presented_key(request: web.Request) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``; a WebSocket handshake, which a browser
    cannot give headers, may offer it as the subprotocol ``bearer.<KEY>`` or the query ``?api_key=``."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    key = request.headers.get("X-API-Key")
    if key or request.headers.get("Upgrade", "").lower() != "websocket":
        return key or None
    for offered in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if (offered := offered.strip()).startswith(KEY_PROTOCOL_PREFIX):
            return offered[len(KEY_PROTOCOL_PREFIX):] or None
    return request.query.get("api_key") or None


async def authenticate(context: ServerContext, key: str) -> ApiKey | None:
    digest = hash_key(key)
    now = time.monotonic()
    cached = context.key_cache.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    api_key = await context.keys.authenticate(key)
    if api_key is None:
        context.key_cache.pop(digest, None)
        return None
    if len(context.key_cache) >= _KEY_CACHE_MAX:
        context.key_cache.clear()
    context.key_cache[digest] = (api_key, now + KEY_CACHE_TTL_S)
    return api_key


async def firebase_caller(firebase: FirebaseVerifier, token: str) -> ApiKey:
    """The Firebase user of ``token``; a refused token is 401 (RFC 6750's ``invalid_token``, with the
    reason: ``expired`` means a fresh token helps), a check that could not be made 503."""
    try:
        return await firebase.verify(token)
    except TokenRejected as exc:
        raise ApiError(401, "unauthorized", str(exc), headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'}) from None
    except AuthUnavailable as exc:
        raise ApiError(503, "auth_unavailable", str(exc), headers={"Retry-After": "5"}) from exc


async def caller_of_credential(context: ServerContext, credential: str) -> ApiKey:
    """The caller a presented credential names: with Firebase configured, a JWT-shaped one is a
    Firebase ID token; anything else an API key (401 when not valid)."""
    if context.firebase is not None and looks_like_jwt(credential):
        return await firebase_caller(context.firebase, credential)
    api_key = await authenticate(context, credential)
    if api_key is None:
        raise ApiError(401, "invalid_api_key", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return api_key


async def identify(request: web.Request) -> ApiKey:
    """The caller behind the request's credential (401 when there is none or it is not valid)."""
    context = ctx(request)
    credential = presented_key(request)
    if credential is None:
        accepted = "the API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        if context.firebase is not None:
            accepted += ", or a Firebase ID token as 'Authorization: Bearer TOKEN'"
        raise ApiError(401, "missing_api_key", f"send {accepted}", headers={"WWW-Authenticate": "Bearer"})
    return await caller_of_credential(context, credential)


async def require_key(request: web.Request, *, auth: Auth) -> ApiKey:
    """The caller's key (or Firebase user), allowed for ``auth``: admin endpoints take admin keys; viewer
    endpoints (the dashboard) viewer or admin keys; client endpoints any key but a viewer's, which only reads."""
    api_key = await identify(request)
    if auth == "admin" and api_key.role is not Role.ADMIN:
        raise ApiError(403, "admin_only", "this endpoint needs an admin key")
    if auth == "viewer" and api_key.role not in (Role.VIEWER, Role.ADMIN):
        raise ApiError(403, "viewer_only", "this endpoint needs a viewer or admin key")
    if auth == "client" and api_key.role is Role.VIEWER:
        raise ApiError(403, "read_only_key", "a viewer key only reads the dashboard")
    return api_key


def signed_body_limit(context: ServerContext) -> int:
    return int(context.settings.proxy.max_upload_mb * 1024 * 1024 * _SIGNED_BODY_FACTOR) + 64 * 1024


async def require_signature(request: web.Request, *, validator: bool) -> tuple[Neuron, MetagraphSnapshot, bytes]:
    """Verify a signed request and that the metagraph allows its hotkey (a permit for validators).

    The claimed hotkey is checked first: anyone can make a keypair and sign, so a stranger's body is
    never read and its nonces never enter the cache (whose evictions raise the staleness floor).
    """
    context = ctx(request)
    snapshot = context.metagraph()
    if snapshot is None:
        raise ApiError(503, "no_metagraph", "this server has no metagraph, so it cannot check signed callers")
    hotkey = request.headers.get(HOTKEY_HEADER, "")
    neuron = snapshot.by_hotkey(hotkey)
    if neuron is None:
        if not hotkey:
            raise MissingSignature(f"signed request needs the {HOTKEY_HEADER} header")
        raise ApiError(403, "unknown_hotkey", "hotkey is not registered on this subnet")
    if validator and not neuron.validator_permit:
        raise ApiError(403, "no_validator_permit", "hotkey has no validator permit")
    body = await read_limited(request, signed_body_limit(context))
    context.verifier.verify(request.headers, body)
    return neuron, snapshot, body


def guard(auth: Auth, handler: Handler) -> Handler:
    """``handler`` behind the authentication and admission ``auth`` asks for."""
    if auth == "public":
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        context = ctx(request)
        if auth in ("client", "admin", "viewer"):
            api_key = await require_key(request, auth=auth)
            request[API_KEY] = api_key
            request[CALLER_ID] = api_key.key_id
            async with context.limiter.admit(api_key.key_id, context.limits_for(api_key)):
                return await handler(request)
        neuron, snapshot, body = await require_signature(request, validator=auth == "validator")
        request[CALLER], request[SNAPSHOT], request[BODY] = neuron, snapshot, body
        request[CALLER_ID] = neuron.hotkey
        async with context.limiter.admit("hotkey:" + neuron.hotkey, context.limits_for(None)):
            return await handler(request)

    guarded.__name__ = getattr(handler, "__name__", "handler")
    return guarded
