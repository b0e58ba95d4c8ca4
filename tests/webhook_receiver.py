"""A real webhook receiver on 127.0.0.1 for the webhook tests: records every POST, answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import WebhookDelivery


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    url: str
    #: statuses answered to the next POSTs, in order (then 200).
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delivered: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)

    async def next_delivered(self, timeout: float = 5.0) -> Received:
        """The next POST answered 2xx."""
        return await asyncio.wait_for(self.delivered.get(), timeout)


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        got = Received(body=await request.read(), headers=dict(request.headers))
        receiver.received.append(got)
        status = receiver.answers.pop(0) if receiver.answers else 200
        if status < 300:
            receiver.delivered.put_nowait(got)
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = str(server.make_url("/hook"))
    try:
        yield receiver
    finally:
        await server.close()


async def until_webhooks(store: WatchedStore, task_id: str, done: Callable[[list[WebhookDelivery]], bool],
                         timeout: float = 5.0) -> list[WebhookDelivery]:
    """The task's webhook records once ``done`` holds for them (woken by the store's change feed)."""
    async with asyncio.timeout(timeout):
        while True:
            with store.events.watching(task_id) as changed:
                hooks = await store.list_webhooks(task_id)
                if done(hooks):
                    return hooks
                await changed
