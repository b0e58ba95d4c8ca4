"""The client library and the ``subnet-proxy`` CLI against a real server: submit, wait with progress, download."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from protocol import encode_audio
from subnet_proxy.api.schemas import TaskStatusView
from subnet_proxy.client import ProxyClient, ProxyError, SyncProxyClient
from subnet_proxy.tasks import MinerReward, Task, TaskStatus
from tests.conftest import tone
from tests.server.conftest import CLIENT_KEY, Harness


def base_url(h: Harness) -> str:
    return str(h.client.make_url("")).rstrip("/")


async def dispatch_next(h: Harness) -> Task:
    """Play the validator loop's part: wait for a submitted task, claim it, assign both miners."""
    for _ in range(200):
        claimed = await h.store.claim_tasks("loop", limit=1, lease_s=60)
        if claimed:
            return await h.store.assign_miners(claimed[0].task_id, "loop", [
                (3, h.neurons.miner_1.ss58_address), (4, h.neurons.miner_2.ss58_address)])
        await h.store.wait_for_task(0.05)
    raise AssertionError("no task was submitted")


def miner_client(h: Harness, which: int = 1) -> ProxyClient:
    kp = h.neurons.miner_1 if which == 1 else h.neurons.miner_2
    return ProxyClient(base_url(h), keypair=kp, receiver_hotkey=h.own_hotkey)


async def test_client_round_trip_with_validator_evaluation(harness: Harness, tmp_path: Path) -> None:
    url = base_url(harness)
    seen: list[TaskStatusView] = []
    async with ProxyClient(url, api_key=CLIENT_KEY) as client, miner_client(harness) as miner, \
            ProxyClient(url, keypair=harness.neurons.validator_b, receiver_hotkey=harness.own_hotkey) as validator:
        accepted = await client.submit_summarization("Cats sleep a lot. Dogs bark. " * 4, max_words=10)
        task = await dispatch_next(harness)
        assert task.task_id == accepted.task_id

        async def answer() -> None:
            await asyncio.sleep(0.3)
            assert (await miner.miner_response(task.task_id, text="Cats sleep.")).first

        answering = asyncio.create_task(answer())
        result = await client.wait(accepted.task_id, timeout_s=20, on_progress=seen.append)
        await answering
        assert (result.stage, result.text, result.uid) == ("first", "Cats sleep.", 3)
        assert seen and seen[0].status is TaskStatus.DISTRIBUTED

        await harness.store.transition(task.task_id, TaskStatus.DONE, claimer="loop")
        page = await validator.validator_tasks()
        assert [t.task_id for t in page.tasks] == [task.task_id]
        outcome = await validator.evaluate(task.task_id, [MinerReward(uid=3, hotkey=task.assigned[0][1], reward=0.8)])
        assert outcome.status is TaskStatus.APPROVED
        final = await client.result(accepted.task_id, stage="final")
        assert final is not None and final.stage == "final" and final.score == pytest.approx(0.8)
        with pytest.raises(ProxyError) as refused:
            await validator.evaluate(task.task_id, [MinerReward(uid=3, hotkey=task.assigned[0][1], reward=0.1)])
        assert (refused.value.status, refused.value.code) == (409, "already_evaluated")

        audio_path = tmp_path / "speech.wav"
        audio_path.write_bytes(encode_audio(tone(0.5), 16_000, "wav"))
        accepted = await client.submit_transcription(audio_path, language="en")
        status = await client.status(accepted.task_id)
        assert status.kind.value == "transcription" and status.status is TaskStatus.PENDING
        events = client.events(accepted.task_id)
        name, data = await anext(events)
        assert (name, data["status"], data["reason"]) == ("status", "pending", None)
        await events.aclose()


async def test_sync_client_and_errors(harness: Harness) -> None:
    url = base_url(harness)

    def use_sync() -> tuple[str, str]:
        with SyncProxyClient(url, api_key=CLIENT_KEY) as client:
            accepted = client.submit_tts("Hello.")
            try:
                client.status("missing")
            except ProxyError as exc:
                return accepted.task_id, exc.code
        raise AssertionError("status of a missing task did not fail")

    task_id, code = await asyncio.to_thread(use_sync)
    assert code == "task_not_found"
    assert (await harness.store.get_task(task_id)).input.text == "Hello."


async def run_cli(h: Harness, *args: str, answer: tuple[str, dict] | None = None) -> tuple[int, str, str]:
    """Run the console script in a real subprocess; optionally answer its task as a miner meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "subnet_proxy.cli", "--url", base_url(h), "--api-key", CLIENT_KEY, "--timeout", "30",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    if answer is not None:
        task = await dispatch_next(h)
        async with miner_client(h) as miner:
            await asyncio.sleep(0.5)
            kind, payload = answer
            if kind == "text":
                await miner.miner_response(task.task_id, **payload)
            else:
                await miner.miner_response(task.task_id, audio=payload["audio"], audio_format="wav")
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_cli_submit_wait_status_and_download(harness: Harness, tmp_path: Path) -> None:
    code, out, err = await run_cli(harness, "submit", "summarize", "The sky is blue. Grass is green. " * 3, "--wait",
                                   answer=("text", {"text": "Colours of nature."}))
    assert code == 0, err
    assert out.strip() == "Colours of nature."
    accepted = json.loads(err.splitlines()[0])
    assert "answered" in err and "[" in err  # the progress display
    code, out, _ = await run_cli(harness, "status", accepted["task_id"])
    assert code == 0 and json.loads(out)["first_response"]["text"] == "Colours of nature."

    audio = encode_audio(tone(0.4, rate=22_050), 22_050, "wav")
    target = tmp_path / "out.wav"
    code, out, err = await run_cli(harness, "submit", "tts", "Hello there", "-o", str(target),
                                   answer=("audio", {"audio": audio}))
    assert code == 0, err
    assert target.read_bytes() == audio and "written to" in out

    code, _, err = await run_cli(harness, "status", "no-such-task")
    assert code == 2 and "task_not_found" in err


async def test_cli_lists_and_cancels_your_tasks(harness: Harness) -> None:
    async with ProxyClient(base_url(harness), api_key=CLIENT_KEY) as client:
        accepted = await client.submit_summarization("Cancel this one. " * 3)
    code, out, err = await run_cli(harness, "tasks", "--status", "pending")
    assert code == 0, err
    assert [t["task_id"] for t in json.loads(out)["tasks"]] == [accepted.task_id]
    code, out, err = await run_cli(harness, "cancel", accepted.task_id)
    assert code == 0, err
    assert json.loads(out)["error"]["code"] == "cancelled"
    code, _, err = await run_cli(harness, "cancel", accepted.task_id)
    assert code == 2 and "task_closed" in err
    code, _, err = await run_cli(harness, "tasks", "--kind", "poetry")
    assert code == 2 and "invalid_request" in err
