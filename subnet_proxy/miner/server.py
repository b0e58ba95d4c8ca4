"""The miner's axon: a bittensor Axon serving the service, behind a body size limit, started and ready.

bittensor's ``Axon.start`` returns while uvicorn is still starting in its thread (queries then get
refused), so ``start`` waits until the port accepts connections, and ``stop`` until it no longer does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import bittensor as bt
from bittensor_wallet import Wallet
from fastapi import HTTPException, Request
from pydantic import ValidationError

from subnet_proxy.config import AxonSettings
from subnet_proxy.miner.body_limit import BodyLimitMiddleware
from subnet_proxy.miner.handlers import attach_service
from subnet_proxy.miner.service import MinerService

READY_TIMEOUT_S = 15.0


class AxonNotReady(RuntimeError):
    """The axon's server did not start listening in time (port taken, or uvicorn failed)."""


BodyCheck = Callable[[Request], Coroutine[Any, Any, dict]]


def _bad_body_is_400(verify: BodyCheck) -> BodyCheck:
    """bittensor's body check rebuilds the synapse from the body in a route dependency (``attach``
    binds it from the instance); a body that breaks the protocol (100,001 characters where 100,000
    are allowed, not JSON, not UTF-8) raised out of it as a 500. It is the caller's error: 400."""

    async def checked(request: Request) -> dict:
        try:
            return await verify(request)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError, JSON and UTF-8 errors are ValueErrors
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            where = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else type(exc).__name__
            raise HTTPException(status_code=400, detail=f"the request body is not a valid synapse ({where})") from None

    return checked


class MinerAxon:
    """One started axon; ``stop`` shuts it down."""

    def __init__(self, settings: AxonSettings, wallet: Wallet, service: MinerService, *, max_body_bytes: int,
                 external_ip: str | None = None) -> None:
        self.settings = settings
        self.external_ip = external_ip or settings.external_ip
        self.axon = bt.Axon(wallet=wallet, ip=settings.ip, port=settings.port, external_ip=self.external_ip,
                            external_port=settings.external_port or settings.port)
        self.axon.verify_body_integrity = _bad_body_is_400(self.axon.verify_body_integrity)  # type: ignore[method-assign,assignment]
        attach_service(self.axon, service)
        # Added last, so outermost: nothing of the axon's reads a body this layer refused.
        self.axon.app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

    @property
    def port(self) -> int:
        return int(self.settings.port)

    def _host(self) -> str:
        return "127.0.0.1" if self.settings.ip in ("0.0.0.0", "", "::") else self.settings.ip

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection(self._host(), self.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async def start(self) -> None:
        """Start serving and return once the port accepts connections."""
        self.axon.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await self._accepts():
            if time.monotonic() > deadline:
                self.axon.stop()
                raise AxonNotReady(f"the axon is not listening on {self._host()}:{self.port} after "
                                   f"{READY_TIMEOUT_S:.0f} s (is the port in use?)")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop serving and return once the port is closed (uvicorn exits in its own thread)."""
        self.axon.stop()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while await self._accepts() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
