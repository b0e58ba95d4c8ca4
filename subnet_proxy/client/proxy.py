"""The async client: every endpoint of the side-server, for clients, admins and signing neurons."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSMsgType
from bittensor_wallet import Keypair
from pydantic import BaseModel

from protocol.audio import b64encode
from subnet_proxy.api.schemas import (
    AnswerAccepted,
    EvaluationOutcome,
    EvaluationRequest,
    HealthView,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyView,
    MinerList,
    ResultPending,
    SummarizationRequest,
    TaskAccepted,
    TaskPage,
    TaskStatusView,
    TextResult,
    TTSRequest,
    ValidatorTaskPage,
    WebhookSecretSet,
    WebhookSecretView,
)
from subnet_proxy.api.usage import UsageReport
from subnet_proxy.api.ws import WS_PROTOCOL, ServerMessage, Subscribed, TaskEvent, WatchState, WsError
from subnet_proxy.client.responses import ProxyError, TaskResult, raise_for_error, read_json
from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy, resend_on_drop
from subnet_proxy.signing import sign_request
from subnet_proxy.tasks import MinerReward

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT_S = 60.0
#: each long-poll asks the server to hold this long at most (the server caps it too).
POLL_S = 10.0


def new_idempotency_key() -> str:
    """A random Idempotency-Key for a submit that was not given one (128 bits: never the same twice)."""
    return secrets.token_hex(16)


class ProxyClient:
    """Async client. ``api_key`` for client/admin endpoints; ``keypair`` + ``receiver_hotkey`` to sign
    miner/validator requests. Use as ``async with ProxyClient(url, api_key=...) as client``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        keypair: Keypair | None = None,
        receiver_hotkey: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        """``outbound``: where connections may go; default any address, loopback included (the user
        named this server), never through a redirect."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.keypair = keypair
        self.receiver_hotkey = receiver_hotkey
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s + POLL_S)
        #: one-shot calls (no long-poll) end within this, however slowly the server sends.
        self._one_shot = aiohttp.ClientTimeout(total=timeout_s)
        self._http = OutboundHTTP(outbound or OutboundPolicy(allow_private=True), timeout=self._timeout)

    async def __aenter__(self) -> ProxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> OutboundHTTP:
        return self._http

    async def close(self) -> None:
        await self._http.close()

    # -- plumbing ------------------------------------------------------------------------------------
    def _key_headers(self) -> dict[str, str]:
        if not self.api_key:
            raise ValueError("this call needs an API key")
        return {"Authorization": f"Bearer {self.api_key}"}

    def _signed_headers(self, body: bytes) -> dict[str, str]:
        if self.keypair is None or not self.receiver_hotkey:
            raise ValueError("signed calls need keypair and receiver_hotkey")
        return sign_request(self.keypair, body, self.receiver_hotkey)

    async def _json(self, method: str, path: str, model: type[M], *, payload: BaseModel | None = None,
                    signed: bool = False, headers: dict[str, str] | None = None,
                    params: dict[str, str] | None = None, resend: bool = False) -> M:
        """``resend``: the request is safe to send twice (a submit under its Idempotency-Key): sent once
        more when the connection drops before any answer (``outbound.resend_on_drop``)."""
        body = payload.model_dump_json(exclude_none=True).encode() if payload is not None else b""
        hdrs = dict(headers or {})
        hdrs.update(self._signed_headers(body) if signed else self._key_headers())
        if payload is not None:
            hdrs["Content-Type"] = "application/json"

        def send() -> Any:
            return self.session.request(method, self.base_url + path, data=body or None, headers=hdrs, params=params)

        async with await (resend_on_drop(send) if resend else send()) as resp:
            await raise_for_error(resp)
            return model.model_validate(await read_json(resp))

    # -- client endpoints ------------------------------------------------------------------------------
    async def submit(self, path: str, body: BaseModel, *, idempotency_key: str | None = None) -> TaskAccepted:
        """Submit a task of a kind taking a JSON body (``path``: its endpoint, ``/api/v1/<kind>``).

        Every submit carries an Idempotency-Key (``idempotency_key``, else a random one made here), so
        a submit whose connection drops before the answer is sent again safely: should the server have
        made the task already, it answers with that task instead of making a second."""
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        return await self._json("POST", path, TaskAccepted, payload=body, headers=headers, resend=True)

    async def submit_audio(self, path: str, audio: bytes | Path, *, language: str | None = None,
                           filename: str = "audio", idempotency_key: str | None = None,
                           callback_url: str | None = None) -> TaskAccepted:
        """Submit a task of a kind taking an audio upload (a multipart form); ``callback_url``: where
        its webhook events go. Sent again on a dropped connection under its Idempotency-Key, as ``submit``."""
        if isinstance(audio, Path):
            filename, audio = audio.name, await asyncio.to_thread(audio.read_bytes)
        data = audio
        headers = {**self._key_headers(), "Idempotency-Key": idempotency_key or new_idempotency_key()}

        def send() -> Any:  # a form is consumed by sending it: one per try
            form = aiohttp.FormData()
            form.add_field("audio", data, filename=filename, content_type="application/octet-stream")
            if language:
                form.add_field("language", language)
            if callback_url:
                form.add_field("callback_url", callback_url)
            return self.session.post(self.base_url + path, data=form, headers=headers)

        async with await resend_on_drop(send) as resp:
            await raise_for_error(resp)
            return TaskAccepted.model_validate(await read_json(resp))

    async def submit_transcription(self, audio: bytes | Path, *, language: str | None = None,
                                   filename: str = "audio", idempotency_key: str | None = None,
                                   callback_url: str | None = None) -> TaskAccepted:
        return await self.submit_audio("/api/v1/transcription", audio, language=language, filename=filename,
                                       idempotency_key=idempotency_key, callback_url=callback_url)

    async def submit_tts(self, text: str, *, voice: str | None = None, idempotency_key: str | None = None,
                         callback_url: str | None = None) -> TaskAccepted:
        return await self.submit("/api/v1/tts", TTSRequest(text=text, voice=voice, callback_url=callback_url),
                                 idempotency_key=idempotency_key)

    async def submit_summarization(self, text: str, *, max_words: int | None = None,
                                   idempotency_key: str | None = None, callback_url: str | None = None) -> TaskAccepted:
        body = SummarizationRequest(text=text, max_words=max_words, callback_url=callback_url)
        return await self.submit("/api/v1/summarization", body, idempotency_key=idempotency_key)

    async def status(self, task_id: str) -> TaskStatusView:
        return await self._json("GET", f"/api/v1/task/{task_id}/status", TaskStatusView)

    async def list_tasks(self, *, status: str | None = None, kind: str | None = None, limit: int = 20,
                         cursor: str | None = None) -> TaskPage:
        """One page of this key's own tasks, newest first; pass ``next_cursor`` back (with the same
        filters) for the next, older page."""
        given = {"status": status, "kind": kind, "cursor": cursor}
        params = {"limit": str(limit), **{k: v for k, v in given.items() if v is not None}}
        return await self._json("GET", "/api/v1/tasks", TaskPage, params=params)

    async def cancel(self, task_id: str) -> TaskStatusView:
        """Cancel a pending or distributed task (it ends failed, error code ``cancelled``); ProxyError
        409 ``task_closed`` when it is past that."""
        return await self._json("POST", f"/api/v1/task/{task_id}/cancel", TaskStatusView)

    async def usage(self, *, days: int = 7, key: str | None = None) -> UsageReport:
        """Tasks, audio seconds and characters used by kind and UTC day over ``days`` days: this key's, or
        with an admin key every key's (``key``: one of them)."""
        params = {"days": str(days), **({"key": key} if key else {})}
        return await self._json("GET", "/api/v1/usage", UsageReport, params=params)

    async def result(self, task_id: str, *, wait: float = 0.0, stage: str = "any") -> TaskResult | None:
        """The result, or None when there is none yet after ``wait`` seconds."""
        params = {"wait": f"{wait:g}", "stage": stage}
        url = f"{self.base_url}/api/v1/task/{task_id}/result"
        async with self.session.get(url, params=params, headers=self._key_headers()) as resp:
            await raise_for_error(resp)
            if resp.status == 202:
                ResultPending.model_validate(await read_json(resp))
                return None
            stage_header = resp.headers.get("X-Result-Stage", "final")
            if resp.content_type == "application/json":
                body = TextResult.model_validate(await read_json(resp))
                return TaskResult(task_id=task_id, stage=body.stage, text=body.text, segments=body.segments,
                                  score=body.score, uid=body.uid)
            return TaskResult(task_id=task_id, stage=stage_header, audio=await resp.read(),
                              content_type=resp.content_type)

    async def wait(self, task_id: str, *, timeout_s: float = 300.0, stage: str = "any",
                   on_progress: Callable[[TaskStatusView], None] | None = None) -> TaskResult:
        """Long-poll until a result exists; ``on_progress`` sees the status between polls.
        Raises TimeoutError when ``timeout_s`` passes, ProxyError when the task failed or expired."""
        deadline = time.monotonic() + timeout_s
        while True:
            if on_progress is not None:
                on_progress(await self.status(task_id))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no result for task {task_id} within {timeout_s:g} s")
            found = await self.result(task_id, wait=min(POLL_S if on_progress is None else 1.0, remaining),
                                      stage=stage)
            if found is not None:
                if on_progress is not None:
                    on_progress(await self.status(task_id))  # the state the result came from
                return found

    async def events(self, task_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The task's server-sent events as (event, data), until the ``end`` event."""
        url = f"{self.base_url}/api/v1/task/{task_id}/events"
        async with self.session.get(url, headers=self._key_headers()) as resp:
            await raise_for_error(resp)
            event, data = "message", ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    yield event, json.loads(data)
                    if event == "end":
                        return
                    event, data = "message", ""

    async def watch(self, task_ids: Sequence[str] = (), *, everything: bool = False,
                    since: datetime | None = None, reconnects: int = 3) -> AsyncIterator[TaskEvent]:
        """Events of these tasks (or, ``everything``, of all this key's tasks as they change) over the
        WebSocket, until each named task's ``end`` (never, with ``everything``). A dropped connection,
        or one closed for reading too slowly (4008), is resumed from each task's last event, at most
        ``reconnects`` times in a row; an event is yielded once. ProxyError: a refused task id (404
        task_not_found), a refused connection or an error message."""
        state = WatchState(list(task_ids), everything=everything, since=since)
        url = self.base_url.replace("http", "ws", 1) + "/api/v1/ws"
        failures = 0
        while not state.done:
            try:
                async with self.session.session.ws_connect(url, headers=self._key_headers(), protocols=(WS_PROTOCOL,),
                                                           heartbeat=POLL_S, autoclose=True) as ws:
                    for sub in state.subscriptions():
                        await ws.send_str(sub.model_dump_json(exclude_none=True))
                    async for msg in ws:
                        match ServerMessage.model_validate_json(msg.data).root if msg.type is WSMsgType.TEXT else None:
                            case Subscribed(refused=[_, *_] as refused):
                                raise ProxyError(404, "task_not_found", f"no such task: {', '.join(refused)}")
                            case WsError(error=error):
                                raise ProxyError(400, error.code, error.message)
                            case TaskEvent() as event if state.accept(event, msg.data):
                                failures = 0
                                yield event
                                if state.done:
                                    return
            except aiohttp.WSServerHandshakeError as exc:
                raise ProxyError(exc.status, "websocket_refused", exc.message) from exc
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                pass
            failures += 1
            if failures > reconnects:
                raise ProxyError(0, "connection_lost", f"the WebSocket closed {failures} times in a row")
            await asyncio.sleep(0.2 * failures)

    async def health(self) -> HealthView:
        async with self.session.get(self.base_url + "/api/v1/health") as resp:
            if resp.status not in (200, 503):
                await raise_for_error(resp)
            return HealthView.model_validate(await read_json(resp))

    async def miners(self) -> MinerList:
        async with self.session.get(self.base_url + "/api/v1/miners") as resp:
            await raise_for_error(resp)
            return MinerList.model_validate(await read_json(resp))

    # -- admin -------------------------------------------------------------------------------------------
    async def create_key(self, name: str, *, role: str = "client", rate_per_s: float | None = None,
                         burst: int | None = None, max_in_flight: int | None = None, daily_tasks: int | None = None,
                         daily_audio_s: float | None = None, daily_chars: int | None = None,
                         webhook_secret: str | None = None) -> KeyCreated:
        req = KeyCreate(name=name, role=role, rate_per_s=rate_per_s, burst=burst, max_in_flight=max_in_flight,
                        daily_tasks=daily_tasks, daily_audio_s=daily_audio_s, daily_chars=daily_chars,
                        webhook_secret=webhook_secret)
        return await self._json("POST", "/api/v1/admin/keys", KeyCreated, payload=req)

    async def set_webhook_secret(self, key_id: str, secret: str | None = None) -> WebhookSecretView:
        """Set a key's webhook secret (None: the server makes one); the answer shows it."""
        return await self._json("PUT", f"/api/v1/admin/keys/{key_id}/webhook_secret", WebhookSecretView,
                                payload=WebhookSecretSet(secret=secret))

    async def list_keys(self, *, include_revoked: bool = False) -> KeyList:
        return await self._json("GET", "/api/v1/admin/keys", KeyList,
                                params={"include_revoked": str(include_revoked).lower()})

    async def revoke_key(self, key_id: str) -> KeyView:
        return await self._json("DELETE", f"/api/v1/admin/keys/{key_id}", KeyView)

    # -- signed (neurons) ---------------------------------------------------------------------------------
    async def miner_response(self, task_id: str, *, text: str | None = None, audio: bytes | None = None,
                             audio_format: str | None = None, segments: list[dict[str, Any]] | None = None,
                             url: str | None = None) -> AnswerAccepted:
        """Deliver a miner's answer, signed; ``url``: the full endpoint a synapse's ``delivery_url`` named
        (default: this client's server)."""
        payload: dict[str, Any] = {"task_id": task_id, "text": text, "segments": segments,
                                   "audio_b64": b64encode(audio) if audio else None, "audio_format": audio_format}
        body = json.dumps({k: v for k, v in payload.items() if v is not None}).encode()
        headers = {**self._signed_headers(body), "Content-Type": "application/json"}
        async with self.session.post(url or self.base_url + "/api/v1/miner/response", data=body,
                                     headers=headers, timeout=self._one_shot) as resp:
            await raise_for_error(resp)
            return AnswerAccepted.model_validate(await read_json(resp))

    async def validator_tasks(self, *, limit: int = 20, cursor: str | None = None) -> ValidatorTaskPage:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return await self._json("GET", "/api/v1/validator/tasks", ValidatorTaskPage, signed=True, params=params)

    async def validator_blob(self, url_path: str) -> bytes:
        async with self.session.get(self.base_url + url_path, headers=self._signed_headers(b"")) as resp:
            await raise_for_error(resp)
            return await resp.read()

    async def evaluate(self, task_id: str, rewards: list[MinerReward]) -> EvaluationOutcome:
        return await self._json("POST", "/api/v1/validator/evaluation", EvaluationOutcome, signed=True,
                                payload=EvaluationRequest(task_id=task_id, rewards=rewards))
