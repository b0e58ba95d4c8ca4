"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, for tests of real pages.

No Playwright download (it cannot fetch its browser here): the browser is started with a free
DevTools port and one page is attached in flat mode over aiohttp's websocket client. Console
errors, uncaught exceptions and failed loads are collected as ``errors``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

#: the flags the machine notes give for a headless browser on a closed network.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--remote-debugging-port=0")


class Chromium:
    """``async with Chromium() as page``: one tab; ``goto``, ``evaluate``, ``wait_for``, ``screenshot``."""

    def __init__(self, *, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> Chromium:
        binary = shutil.which("chromium")
        if binary is None:
            raise RuntimeError("chromium is missing: scripts/emulators.sh install-deps installs Debian's package")
        self._profile = tempfile.TemporaryDirectory(prefix="spx-chromium-")
        self.proc = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        url = None
        while url is None:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 30)
            if not line:
                raise RuntimeError("chromium exited before its DevTools endpoint was up")
            if match := re.search(rb"DevTools listening on (ws://\S+)", line):
                url = match.group(1).decode()
        self._drain = asyncio.create_task(self._drain_stderr())
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.send(f"{domain}.enable", session=self.session)
        await self.resize(self.width, self.height)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.http.close()
        self.proc.terminate()
        await self.proc.wait()
        self._drain.cancel()
        self._profile.cleanup()

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while await self.proc.stderr.readline():
            pass

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            else:
                self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = (str(a.get("value", a.get("description"))) for a in params["args"])
            self.errors.append("console: " + " ".join(args))
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + params["exceptionDetails"].get("exception", {}).get("description", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append("log: " + params["entry"]["text"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.errors.append("load failed: " + params.get("errorText", ""))

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = fut
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def page(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.send(method, session=self.session, **params)

    async def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=mobile)

    async def goto(self, url: str) -> None:
        await self.page("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        reply = await self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (not only the viewport)."""
        size = await self.evaluate("[Math.max(innerWidth, document.documentElement.scrollWidth), "
                                   "Math.max(innerHeight, document.documentElement.scrollHeight)]")
        shot = await self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
