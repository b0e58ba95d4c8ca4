"""HTTP errors: one exception for the API's own refusals and one middleware mapping every domain error.

Every error leaves the server as ``{"error": {"code": "...", "message": "..."}}`` (plus ``details``
for field errors) with the status below; handlers raise, they never build error responses.

    ApiError(status, code)          raised by handlers and helpers
    TaskNotFound / KeyNotFound      404 task_not_found / key_not_found
    BlobNotFound / InvalidBlobKey   404 blob_not_found / 400 invalid_blob_key
    SignatureError                  401 with its own code (stale_request, replayed_nonce, ...)
    EvaluationRefused               409 with its own code
    IllegalTransition               409 illegal_transition
    InvalidCursor                   400 invalid_cursor
    StoreError / BlobError          503 backend_unavailable (logged)
    aiohttp HTTPException           its status (404 route, 405 method, 413 body)
    anything else                   500 internal_error (logged with the request id)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from subnet_proxy.approval import EvaluationRefused
from subnet_proxy.blobs.base import BlobError, BlobNotFound, InvalidBlobKey
from subnet_proxy.keys import KeyNotFound
from subnet_proxy.server.request_keys import REQUEST_ID
from subnet_proxy.signing import SignatureError
from subnet_proxy.store.base import InvalidCursor, StoreError, TaskNotFound
from subnet_proxy.tasks import IllegalTransition

log = logging.getLogger("subnet_proxy.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """A refusal with its HTTP status, a stable machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


class ClientAborted(Exception):
    """The client went away before its request was read in full: nobody to answer, nothing broken here
    (counted as ``aborted``, logged at DEBUG, never a 500)."""


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(err: ApiError) -> web.Response:
    return web.Response(
        status=err.status,
        text=json.dumps(error_body(err.code, err.message, err.details)),
        content_type="application/json",
        headers=err.headers,
    )


def to_api_error(exc: BaseException) -> ApiError | None:
    """The ApiError a known domain exception stands for, or None for an unexpected one."""
    match exc:
        case ApiError():
            return exc
        case TaskNotFound():
            return ApiError(404, "task_not_found", "no such task")
        case KeyNotFound():
            return ApiError(404, "key_not_found", str(exc))
        case BlobNotFound():
            return ApiError(404, "blob_not_found", "no such blob")
        case InvalidBlobKey():
            return ApiError(400, "invalid_blob_key", str(exc))
        case SignatureError():
            return ApiError(401, exc.code, exc.message)
        case EvaluationRefused():
            return ApiError(409, exc.code, exc.message)
        case InvalidCursor():
            return ApiError(400, "invalid_cursor", str(exc))
        case IllegalTransition():
            return ApiError(409, "illegal_transition", str(exc))
        case StoreError() | BlobError():
            log.error("backend error: %r", exc)
            return ApiError(503, "backend_unavailable", "the task or blob store failed; try again")
        case web.HTTPException() if exc.status >= 400:
            code = _HTTP_CODES.get(exc.status, "http_error")
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            return ApiError(exc.status, code, message or code, headers={
                k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")
            })
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ClientAborted:
        raise  # the request middleware counts it; there is no one to send an answer to
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and 2xx raised as exceptions pass through
        api_error = to_api_error(exc)
        if api_error is None:
            raise
        return error_response(api_error)
    except Exception as exc:  # the one place unknown errors become a 500; logged, never hidden
        api_error = to_api_error(exc)
        if api_error is None:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.path,
                          request.get(REQUEST_ID))
            api_error = ApiError(500, "internal_error", f"internal error (request id {request.get(REQUEST_ID)})")
        return error_response(api_error)
