"""``GET /api/v1/ws``: follow many tasks' events over one WebSocket (messages: ``api/ws.py``; fan-out: ``ws_hub``).

Authentication is the client endpoints' (``auth.guard``): the key in ``Authorization``/``X-API-Key``,
or, since a browser cannot set headers on a WebSocket, offered as the subprotocol ``bearer.<KEY>``
beside ``subnet-proxy.v1`` (which the server selects, never echoing the key), or as ``?api_key=``
(which proxies may log: prefer the subprotocol). A connection holds one of its key's in-flight
slots while open; a key holds at most ``--proxy.ws_per_key`` connections. Every client message
takes one token of the key's request rate; a refused or malformed message is answered with an
``error`` message, and the connection stays open.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from subnet_proxy.api.ws import (
    CLOSE_GOING_AWAY,
    WS_PROTOCOL,
    ClientMessage,
    ServerMessage,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
)
from subnet_proxy.keys import Role
from subnet_proxy.server.auth import API_KEY
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.feed import FeedCursor, read_snapshot
from subnet_proxy.server.routing import Endpoint, QueryParam
from subnet_proxy.server.ws_hub import WsConnection, WsHub
from subnet_proxy.store.base import TaskNotFound
from subnet_proxy.tasks import Task

WS_HUB: web.AppKey[WsHub] = web.AppKey("subnet_proxy_ws_hub", WsHub)
#: the largest client message (a subscribe naming 1,000 task ids is about 35 KB).
MAX_MESSAGE_BYTES = 64 * 1024


def install(app: web.Application, context: ServerContext) -> None:
    """Give ``app`` its hub, closed (code 1001) when the server shuts down."""
    app[WS_HUB] = WsHub(context.store, context.settings.proxy)

    async def shutdown(app: web.Application) -> None:
        await app[WS_HUB].shutdown(CLOSE_GOING_AWAY, "server shutting down")

    app.on_shutdown.append(shutdown)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    context, hub, api_key = ctx(request), request.app[WS_HUB], request[API_KEY]
    proxy = context.settings.proxy
    if hub.per_key[api_key.key_id] >= proxy.ws_per_key:
        raise ApiError(429, "too_many_websockets", f"at most {proxy.ws_per_key} WebSocket connections per key",
                       headers={"Retry-After": "1"})
    ws = web.WebSocketResponse(protocols=(WS_PROTOCOL,), heartbeat=proxy.ws_heartbeat_s, compress=False,
                               max_msg_size=MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_expected", "this endpoint speaks WebSocket (send an Upgrade request)")
    await ws.prepare(request)
    conn = WsConnection(ws, api_key, proxy)
    hub.open(conn)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await _handle(context, hub, conn, msg.data)
            elif msg.type is WSMsgType.BINARY:
                conn.error("invalid_message", "messages are JSON text frames")
    finally:
        await hub.close(conn)
    return ws


async def _handle(context: ServerContext, hub: WsHub, conn: WsConnection, raw: str) -> None:
    if context.limiter.charge(conn.api_key.key_id, context.limits_for(conn.api_key)) > 0:
        conn.error("rate_limited", "messages over the key's request rate; this one was ignored")
        return
    try:
        message = ClientMessage.model_validate_json(raw).root
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        conn.error("invalid_message", f"{where + ': ' if where else ''}{first['msg']}"[:300])
        return
    if isinstance(message, Unsubscribe):
        _unsubscribe(hub, conn, message)
    else:
        await _subscribe(context, hub, conn, message)


def _unsubscribe(hub: WsHub, conn: WsConnection, message: Unsubscribe) -> None:
    for task_id in message.task_ids:
        hub.unfollow(conn, task_id)
    if message.all:
        hub.unfollow_all(conn)
    conn.send(Unsubscribed(task_ids=message.task_ids, all=message.all))


async def _subscribe(context: ServerContext, hub: WsHub, conn: WsConnection, message: Subscribe) -> None:
    if message.all:
        hub.follow_all(conn, message.since)
        conn.send(Subscribed(task_ids=[], all=True))
        return
    wanted = list(dict.fromkeys(message.task_ids))
    new = [t for t in wanted if t not in conn.cursors]
    if len(conn.cursors) + len(new) > conn.max_follows:
        conn.error("too_many_subscriptions", f"a connection follows at most {conn.max_follows} tasks; "
                   f"it follows {len(conn.cursors)}")
        return
    found = await asyncio.gather(*(_owned(context, conn, t) for t in new))
    tasks = [task for task in found if task is not None]
    refused = [t for t, task in zip(new, found, strict=True) if task is None]
    for task in tasks:
        hub.follow(conn, task.task_id, FeedCursor(since=message.since))
    conn.send(Subscribed(task_ids=[t for t in wanted if t not in refused], refused=refused))
    for task in tasks:  # the history so far; the hub sends what follows (each event once: the cursor)
        hub.deliver(conn, await read_snapshot(context.store, task))


async def _owned(context: ServerContext, conn: WsConnection, task_id: str) -> Task | None:
    """The task if this key may follow it (its own; an admin any); None, as for an unknown id, otherwise."""
    try:
        task = await context.store.get_task(task_id)
    except TaskNotFound:
        return None
    owner_or_admin = task.owner == conn.api_key.key_id or conn.api_key.role is Role.ADMIN
    return task if owner_or_admin else None


ENDPOINTS = [
    Endpoint("GET", "/api/v1/ws", websocket, "Follow many tasks' events over one WebSocket", "client", "tasks",
             also={101: "Switching Protocols: the WebSocket. Messages are JSON text frames: the client sends "
                        "ClientMessage, the server ServerMessage (see components)."},
             query=(QueryParam("api_key", {"type": "string"},
                               "The API key, for clients that cannot set headers (proxies may log it: a browser "
                               "should offer the subprotocol 'bearer.<KEY>' instead)."),),
             errors=(400, 401, 403, 429),
             messages={"client": ClientMessage, "server": ServerMessage},
             description="Subscribe to task ids (your own; an admin key any) or to all your tasks; receive each "
                         "task's events (status per timeline step, response per miner answer with first=true on "
                         "the first valid one, result, end) as they happen. Subscribing replays a task's events so "
                         "far; 'since' (an event's 'at') replays only those at or after it, to catch up after a "
                         "reconnect. Browsers offer the subprotocols ['subnet-proxy.v1', 'bearer.<KEY>']; the "
                         "server selects 'subnet-proxy.v1'. The server pings every --proxy.ws_heartbeat_s. Close "
                         "codes: 4008 the client read too slowly (more than --proxy.ws_queue messages waiting; "
                         "reconnect with since), 1001 the server shuts down, 1009 a message over 64 KB. At most "
                         "--proxy.ws_per_key connections per key (429 too_many_websockets) and "
                         "--proxy.ws_subscriptions tasks per connection (error too_many_subscriptions)."),
]
