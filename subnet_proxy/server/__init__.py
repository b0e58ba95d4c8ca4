"""The aiohttp side-server: client task API, signed neuron endpoints, admin keys, health, metrics, OpenAPI docs."""

from subnet_proxy.server.app import RunningServer, create_app, endpoints, start_server
from subnet_proxy.server.context import CONTEXT, ServerContext

__all__ = [
    "CONTEXT",
    "RunningServer",
    "ServerContext",
    "create_app",
    "endpoints",
    "start_server",
]
