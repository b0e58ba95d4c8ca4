"""The aiohttp side-server: client task API, signed neuron endpoints, admin keys, health, metrics, OpenAPI docs."""

from subnet_proxy.server.app import RunningServer, create_app, endpoints, start_server
from subnet_proxy.server.context import CONTEXT, ServerContext
from subnet_proxy.store.watched import TaskEvents, WatchedStore

__all__ = [
    "CONTEXT",
    "RunningServer",
    "ServerContext",
    "TaskEvents",
    "WatchedStore",
    "create_app",
    "endpoints",
    "start_server",
]
