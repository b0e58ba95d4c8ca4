"""The endpoint table: one declaration per route feeds both the aiohttp router and the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from subnet_proxy.server.auth import Auth, guard
from subnet_proxy.server.errors import Handler


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: dict[str, object]
    description: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth
    tag: str
    #: request body: content type -> model describing it.
    body: dict[str, type[BaseModel]] = field(default_factory=dict)
    #: success status and what it carries: content type -> model (None: a binary or text body).
    status: int = 200
    response: dict[str, type[BaseModel] | None] = field(default_factory=dict)
    #: other success statuses with a description.
    also: dict[int, str] = field(default_factory=dict)
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""
    #: a WebSocket's messages: direction ("client", "server") -> model.
    messages: dict[str, type[BaseModel]] = field(default_factory=dict)


def add_endpoints(app: web.Application, endpoints: list[Endpoint]) -> None:
    for ep in endpoints:
        app.router.add_route(ep.method, ep.path, guard(ep.auth, ep.handler), name=ep.handler.__name__)
