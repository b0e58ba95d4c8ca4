"""Every curl example in the README, run as written by curl against a real side-server: each is answered 2xx.

The README's example voice ("joe") was taken with 202 and then refused by every miner; an example
that rots now fails here. Only the README's placeholders are filled in: ``$URL``, ``$KEY``,
``$ADMIN`` and ``$ID`` (a finished task of the client), the local-mode printout's URL and dev key,
and the example key id to revoke (a key made for the purpose, of the same shape). curl is told to
print the status (``-w``) and to give up after ``MAX_TIME_S``; nothing else of a command changes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from pathlib import Path

from protocol import encode_audio
from subnet_proxy.keys.base import Role
from subnet_proxy.tasks import FinalResult, TaskStatus
from tests.conftest import tone
from tests.readme import README, command_lines, fenced_blocks
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness

MAX_TIME_S = 20
#: the README's stand-ins that are not shell variables: (placeholder, what it stands for).
LOCAL_URL, DEV_KEY, EXAMPLE_KEY_ID = "http://127.0.0.1:8000", "spx_dev_...", "k_1a2b3c4d5e6f"
STATUS_MARK = "\n@status "


def readme_curls(text: str) -> list[str]:
    """The curl commands of the README's fenced code blocks, continuation lines joined."""
    return [line for block in fenced_blocks(text) for line in command_lines(block) if line.startswith("curl ")]


def as_run(command: str, url: str, key_id: str) -> str:
    """The command with the placeholders filled in and curl told to report its status."""
    filled = command.replace(LOCAL_URL, url).replace(DEV_KEY, CLIENT_KEY).replace(EXAMPLE_KEY_ID, key_id)
    report = shlex.quote(STATUS_MARK + "%{http_code}\n")
    return filled.replace("curl ", f"curl --max-time {MAX_TIME_S} -w {report} ", 1)


async def finished_task(harness: Harness) -> str:
    """A client's task as the loop leaves it once evaluated: every follow-up example can read it."""
    task = await harness.done_task(owner=await harness.client_key_id())
    await harness.store.set_final_result(FinalResult(task_id=task.task_id, kind=task.kind, uid=3, score=0.9,
                                                     hotkey=harness.neurons.miner_1.ss58_address,
                                                     text="first summary"))
    await harness.store.transition(task.task_id, TaskStatus.APPROVED)
    return task.task_id


def test_the_readme_has_the_examples_this_test_runs() -> None:
    """The parser finds every kind of example (a parser that found none would pass vacuously)."""
    commands = readme_curls(README.read_text(encoding="utf-8"))
    for endpoint in ("/api/v1/transcription", "/api/v1/tts", "/api/v1/summarization", "/result", "/events",
                     "/api/v1/health", "/api/v1/admin/keys", LOCAL_URL):
        assert any(endpoint in c for c in commands), endpoint
    assert any(EXAMPLE_KEY_ID in c for c in commands) and re.fullmatch(r"k_[0-9a-f]{12}", EXAMPLE_KEY_ID)


async def test_every_readme_curl_example_is_accepted(harness: Harness, tmp_path: Path) -> None:
    workdir = tmp_path / "client"
    workdir.mkdir()
    (workdir / "speech.wav").write_bytes(encode_audio(tone(1.0), 16_000, "wav"))
    (workdir / "speech.flac").write_bytes(encode_audio(tone(1.0), 16_000, "flac"))
    url = str(harness.client.make_url("")).rstrip("/")
    revocable, _ = await harness.keys.create(name="to revoke", role=Role.CLIENT)
    env = {**os.environ, "URL": url, "KEY": CLIENT_KEY, "ADMIN": ADMIN_KEY, "ID": await finished_task(harness)}
    commands = readme_curls(README.read_text(encoding="utf-8"))
    failures = []
    for command in commands:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", "set -o pipefail; " + as_run(command, url, revocable.key_id), cwd=workdir, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), MAX_TIME_S + 10)
        body, _, status = out.decode(errors="replace").rpartition(STATUS_MARK)
        if proc.returncode != 0 or not status.strip().isdigit() or not 200 <= int(status) < 300:
            failures.append(f"{command}\n  -> exit {proc.returncode}, status {status.strip()!r}: "
                            f"{body[-300:]}{err.decode(errors='replace')[-300:]}")
    assert not failures, "\n".join(failures)
    assert len(commands) >= 15


async def test_the_old_voice_example_would_be_reported(harness: Harness, tmp_path: Path) -> None:
    """The check itself: the README's old TTS example now shows as its 400, not as success."""
    old = ("curl -s -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' "
           "-d '{\"text\": \"Hello there.\", \"voice\": \"joe\"}' $URL/api/v1/tts")
    url = str(harness.client.make_url("")).rstrip("/")
    proc = await asyncio.create_subprocess_exec("bash", "-c", as_run(old, url, "unused"), cwd=tmp_path,
                                                env={**os.environ, "URL": url, "KEY": CLIENT_KEY},
                                                stdout=asyncio.subprocess.PIPE)
    body, _, status = (await proc.communicate())[0].decode().rpartition(STATUS_MARK)
    assert status.strip() == "400" and "unsupported_voice" in body
