"""Serving a stored blob as a response body in chunks, so large audio never sits whole in memory."""

from __future__ import annotations

from contextlib import aclosing

from aiohttp import web

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.server.errors import ApiError


async def stream_blob(request: web.Request, blobs: BlobStore, key: str, *, content_type: str | None = None,
                      headers: dict[str, str] | None = None) -> web.StreamResponse:
    """The blob as the response (its stored content type unless one is given); 404 when it is gone."""
    ref = await blobs.stat(key)
    if ref is None:
        raise ApiError(404, "blob_not_found", "the audio is no longer stored")
    resp = web.StreamResponse(headers={**(headers or {}), "Content-Type": content_type or ref.content_type,
                                       "Content-Length": str(ref.size)})
    await resp.prepare(request)
    try:
        async with aclosing(blobs.stream(key)) as chunks:  # closes the file even when the client leaves
            async for chunk in chunks:
                await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away mid-download; nothing to clean up beyond the file
    return resp
