"""How a task's records look to its client: its answers, its final result and its webhook deliveries.

Shared by the status and result endpoints and the webhook events (which carry the same views).
"""

from __future__ import annotations

from subnet_proxy.api.schemas import AnswerView, FinalView, WebhookView, result_url
from subnet_proxy.tasks import FinalResult, MinerResponse, WebhookDelivery


def _audio_url(task_id: str, blob: str | None, stage: str) -> str | None:
    return f"{result_url(task_id)}?stage={stage}" if blob else None


def answer_view(resp: MinerResponse) -> AnswerView:
    return AnswerView(uid=resp.uid, text=resp.text, segments=resp.segments,
                      audio_url=_audio_url(resp.task_id, resp.output_blob, "any"), audio_format=resp.output_format,
                      latency_s=resp.latency_s, received_at=resp.received_at)


def final_view(result: FinalResult) -> FinalView:
    return FinalView(uid=result.uid, score=result.score, text=result.text, segments=result.segments,
                     audio_url=_audio_url(result.task_id, result.output_blob, "final"),
                     audio_format=result.output_format, decided_at=result.decided_at)


def webhook_view(delivery: WebhookDelivery) -> WebhookView:
    return WebhookView(event_id=delivery.event_id, type=delivery.event_type, state=delivery.state,
                       attempts=delivery.attempts, last_status=delivery.last_status, last_error=delivery.last_error,
                       last_attempt_at=delivery.last_attempt_at, delivered_at=delivery.delivered_at,
                       next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None)
