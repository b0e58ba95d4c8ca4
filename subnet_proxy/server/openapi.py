"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models that validate requests,
and the browsable ``/docs`` page (a local HTML file: nothing loads from the internet)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from protocol import __version__
from subnet_proxy.api.schemas import ErrorBody, WebhookEvent
from subnet_proxy.server.routing import Endpoint

_REF = "#/components/schemas/{model}"

_SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "Client or admin API key; or, where the server sets --auth.firebase_project, a "
                              "Firebase ID token of that project (the user's tasks are 'fb:<uid>'; the custom "
                              "claim 'role' makes an admin). A refused token is 401 'unauthorized' whose "
                              "WWW-Authenticate error_description says why: 'expired' (get a fresh token), "
                              "'revoked', 'disabled' or 'invalid'."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Client or admin API key."},
    "hotkeySignature": {
        "type": "apiKey", "in": "header", "name": "X-Signature",
        "description": "sr25519 signature by the X-Hotkey hotkey of 'sha256(body).nonce.timestamp.receiver_hotkey' "
                       "(hex), with headers X-Hotkey, X-Nonce, X-Timestamp and X-Receiver. Stale timestamps, "
                       "replayed nonces and hotkeys the metagraph does not allow are refused.",
    },
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": [],
    "client": [{"bearer": []}, {"apiKey": []}],
    "admin": [{"bearer": []}, {"apiKey": []}],
    "viewer": [{"bearer": []}, {"apiKey": []}],
    "miner": [{"hotkeySignature": []}],
    "validator": [{"hotkeySignature": []}],
}
_ERROR_TEXT = {
    400: "Invalid request (malformed JSON, wrong types, unknown fields, bad audio).",
    401: "Missing or invalid credentials or signature.",
    403: "Not allowed for this caller.",
    404: "Unknown id (or another client's task).",
    409: "Conflicts with the task's state.",
    410: "The task expired.",
    413: "Body, file or audio duration over the limit.",
    415: "Unsupported content type or audio container.",
    429: "Rate or concurrency limit; see Retry-After.",
    503: "A dependency is unavailable.",
}


def _models(endpoints: list[Endpoint]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorBody": ErrorBody, "WebhookEvent": WebhookEvent}
    for ep in endpoints:
        for model in [*ep.body.values(), *ep.response.values(), *ep.messages.values()]:
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": ep.handler.__name__,
        "summary": ep.summary,
        "tags": [ep.tag],
        "security": _SECURITY[ep.auth],
    }
    if ep.description:
        op["description"] = ep.description
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _path_params(ep.path)]
    params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema, "description": q.description}
               for q in ep.query]
    if ep.body:
        op["requestBody"] = {"required": True, "content": {ct: {"schema": _ref(m)} for ct, m in ep.body.items()}}
    if ep.auth in ("client",) and ep.method == "POST":
        params.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "Repeat a submit safely: the same key returns the same task."})
    if params:
        op["parameters"] = params
    content = {ct: {"schema": _ref(m) if m else {"type": "string", "format": "binary"}}
               for ct, m in ep.response.items()}
    success: dict[str, Any] = {"description": "Success."}
    if content:
        success["content"] = content
    responses: dict[str, Any] = {str(ep.status): success}
    for status, text in ep.also.items():
        responses[str(status)] = {"description": text}
    for status in ep.errors:
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error."),
                                  "content": {"application/json": {"schema": _ref(ErrorBody)}}}
    op["responses"] = responses
    if ep.messages:
        op["x-websocket-messages"] = {direction: _ref(model) for direction, model in ep.messages.items()}
    return op


#: what this server POSTs to a task's callback_url (OpenAPI 3.1 ``webhooks``).
_WEBHOOKS: dict[str, Any] = {"taskEvent": {"post": {
    "summary": "A task's event, POSTed to the callback_url given at submission",
    "description": "Sent on the first valid answer (task.first_answer) and when the task reaches done, approved, "
                   "failed (a cancel is failed with error code 'cancelled') or expired. Header X-Signature: "
                   "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.<raw body>')>, the secret being the API key's "
                   "webhook secret, else the validator's: check it with subnet_proxy.client.verify_webhook and "
                   "refuse old times (replays). Header X-Webhook-Id: the event id (the same on every retry: "
                   "deduplicate on it). Any 2xx answer delivers it; anything else is retried with exponential "
                   "back-off for up to --proxy.webhook_max_age_s. Redirects are not followed.",
    "parameters": [{"name": "X-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
                   {"name": "X-Webhook-Id", "in": "header", "required": True, "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(
        model="WebhookEvent")}}}},
    "responses": {"2XX": {"description": "Delivered."}},
}}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "validation") for m in _models(endpoints)], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "subnet-proxy",
            "version": __version__,
            "description": "Client API of a Bittensor audio subnet validator: transcription, text-to-speech and "
                           "summarization tasks; signed endpoints for miners and validators. Errors are "
                           '`{"error": {"code", "message"}}`.',
        },
        "paths": paths,
        "webhooks": _WEBHOOKS,
        "components": {"schemas": schemas.get("$defs", {}), "securitySchemes": _SECURITY_SCHEMES},
    }


def docs_html() -> str:
    return resources.files("subnet_proxy.server").joinpath("static/docs.html").read_text(encoding="utf-8")


def docs_routes(document: dict[str, Any]) -> list[web.RouteDef]:
    page = docs_html()

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    return [web.get("/api/v1/openapi.json", openapi_json), web.get("/docs", docs)]
