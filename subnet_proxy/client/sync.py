"""The blocking client for scripts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from subnet_proxy.api.schemas import TaskAccepted, TaskPage, TaskStatusView
from subnet_proxy.api.usage import UsageReport
from subnet_proxy.client.proxy import DEFAULT_TIMEOUT_S, ProxyClient
from subnet_proxy.client.responses import TaskResult


class SyncProxyClient:
    """Blocking wrapper for scripts: the common client calls, each run to completion on a private loop."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._runner = asyncio.Runner()
        self._client = ProxyClient(base_url, api_key=api_key, timeout_s=timeout_s)

    def __enter__(self) -> SyncProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()

    def submit_transcription(self, audio: bytes | Path, **kw: Any) -> TaskAccepted:
        return self._runner.run(self._client.submit_transcription(audio, **kw))

    def submit_tts(self, text: str, **kw: Any) -> TaskAccepted:
        return self._runner.run(self._client.submit_tts(text, **kw))

    def submit_summarization(self, text: str, **kw: Any) -> TaskAccepted:
        return self._runner.run(self._client.submit_summarization(text, **kw))

    def status(self, task_id: str) -> TaskStatusView:
        return self._runner.run(self._client.status(task_id))

    def list_tasks(self, **kw: Any) -> TaskPage:
        return self._runner.run(self._client.list_tasks(**kw))

    def cancel(self, task_id: str) -> TaskStatusView:
        return self._runner.run(self._client.cancel(task_id))

    def usage(self, **kw: Any) -> UsageReport:
        return self._runner.run(self._client.usage(**kw))

    def result(self, task_id: str, **kw: Any) -> TaskResult | None:
        return self._runner.run(self._client.result(task_id, **kw))

    def wait(self, task_id: str, **kw: Any) -> TaskResult:
        return self._runner.run(self._client.wait(task_id, **kw))
