"""Signed neuron endpoints through a real server: miners answer, validators list and evaluate; every refusal."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from protocol import b64encode, encode_audio
from subnet_proxy.server.auth import signed_body_limit
from subnet_proxy.server.context import CONTEXT
from subnet_proxy.signing import sign_request
from subnet_proxy.tasks import Task, TaskKind, TaskStatus
from tests.conftest import tone
from tests.server.conftest import Harness, auth, error_of, start_harness, stop_harness


async def test_miner_answers_once_and_self_reported_scores_are_ignored(harness: Harness) -> None:
    task = await harness.distributed_task()
    payload = {"task_id": task.task_id, "text": "my summary", "score": 1.0, "reward": 1.0, "latency_s": 0.0001}
    resp = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1, payload)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"task_id": task.task_id, "uid": 3, "first": True}
    [stored] = await harness.store.list_responses(task.task_id)
    assert stored.text == "my summary" and stored.uid == 3 and stored.state == "ok"
    assert stored.latency_s is not None and stored.latency_s != 0.0001  # measured here, not taken from the miner
    assert "score" not in stored.model_dump_json() and "reward" not in stored.model_dump_json()

    again = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1,
                                 {"task_id": task.task_id, "text": "changed my mind"})
    assert again.status == 409 and await error_of(again) == "already_answered"
    [stored] = await harness.store.list_responses(task.task_id)
    assert stored.text == "my summary"


async def test_miner_refusals(harness: Harness) -> None:
    n = harness.neurons
    task = await harness.distributed_task()
    tts = await harness.distributed_task(kind=TaskKind.TTS, text="Speak.")
    cases = [
        (n.validator_a, {"task_id": task.task_id, "text": "x"}, 403, "not_assigned"),
        (n.stranger, {"task_id": task.task_id, "text": "x"}, 403, "unknown_hotkey"),
        (n.miner_1, {"task_id": "nope", "text": "x"}, 404, "task_not_found"),
        (n.miner_1, {"task_id": task.task_id}, 400, "missing_field"),
        (n.miner_1, {"task_id": task.task_id, "text": 5}, 400, "invalid_request"),
        (n.miner_1, {"task_id": tts.task_id, "text": "words, not audio"}, 400, "missing_field"),
        (n.miner_1, {"task_id": tts.task_id, "audio_b64": b64encode(b"not audio at all")}, 400, "invalid_audio"),
    ]
    for signer, payload, status, code in cases:
        resp = await harness.signed("POST", "/api/v1/miner/response", signer, payload)
        assert resp.status == status, (code, await resp.text())
        assert await error_of(resp) == code
    resp = await harness.client.post("/api/v1/miner/response", data=b"{oops",
                                     headers={**sign_request(n.miner_1, b"{oops", harness.own_hotkey),
                                              "Content-Type": "application/json"})
    assert resp.status == 400 and await error_of(resp) == "malformed_json"
    await harness.store.transition(task.task_id, TaskStatus.DONE, claimer="loop")
    resp = await harness.signed("POST", "/api/v1/miner/response", n.miner_2, {"task_id": task.task_id, "text": "late"})
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert await harness.store.list_responses(task.task_id) == []


async def test_an_answer_racing_the_end_of_its_task_is_refused(harness: Harness,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator moves the task to DONE right after the endpoint read it as distributed: the store
    refuses the answer in its write (it would never be scored), and nothing is stored."""
    task = await harness.distributed_task()
    read = harness.store.get_task

    async def read_then_task_ends(task_id: str) -> Task:
        seen = await read(task_id)
        await harness.store.transition(task_id, TaskStatus.DONE, claimer="loop")
        return seen

    monkeypatch.setattr(harness.store, "get_task", read_then_task_ends)
    resp = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1,
                                {"task_id": task.task_id, "text": "just too late"})
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert "done" in (await resp.json())["error"]["message"]
    assert await harness.store.list_responses(task.task_id) == []


async def test_tts_answer_is_stored_as_a_blob(harness: Harness) -> None:
    task = await harness.distributed_task(kind=TaskKind.TTS, text="Speak.")
    audio = encode_audio(tone(0.3, rate=16_000), 16_000, "flac")
    resp = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_2,
                                {"task_id": task.task_id, "audio_b64": b64encode(audio)})
    assert resp.status == 200
    [stored] = await harness.store.list_responses(task.task_id)
    assert stored.output_format == "flac" and stored.output_sample_rate == 16_000
    assert await harness.blobs.get(stored.output_blob) == audio


async def test_signature_failures(harness: Harness) -> None:
    n = harness.neurons
    task = await harness.distributed_task()
    body = json.dumps({"task_id": task.task_id, "text": "x"}).encode()
    path = "/api/v1/miner/response"

    async def post(headers: dict[str, str], data: bytes = body):
        return await harness.client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})

    good = sign_request(n.miner_1, body, harness.own_hotkey)
    forged = {**good, "X-Hotkey": n.miner_2.ss58_address}  # miner_1's signature claimed by miner_2
    cases = [
        ({}, "missing_signature"),
        ({k: v for k, v in good.items() if k != "X-Signature"}, "missing_signature"),
        (forged, "bad_signature"),
        ({**good, "X-Signature": "0x" + "00" * 64}, "bad_signature"),
        ({**good, "X-Signature": "zz"}, "bad_signature"),
        (sign_request(n.miner_1, body, harness.own_hotkey, now=time.time() - 3600), "stale_request"),
        (sign_request(n.miner_1, body, harness.own_hotkey, now=time.time() + 3600), "stale_request"),
        ({**good, "X-Timestamp": "yesterday"}, "missing_signature"),
        (sign_request(n.miner_1, body, n.validator_a.ss58_address), "wrong_receiver"),
        ({**sign_request(n.miner_1, body, n.validator_a.ss58_address), "X-Receiver": harness.own_hotkey},
         "bad_signature"),
    ]
    for headers, code in cases:
        resp = await post(headers)
        assert resp.status == 401, (code, await resp.text())
        assert await error_of(resp) == code
    resp = await post({**good, "X-Hotkey": "not-an-address"})
    assert resp.status == 403 and await error_of(resp) == "unknown_hotkey"
    # the body is covered by the signature
    resp = await post(good, data=json.dumps({"task_id": task.task_id, "text": "tampered"}).encode())
    assert resp.status == 401 and await error_of(resp) == "bad_signature"
    assert await harness.store.list_responses(task.task_id) == []
    # the good request is accepted once; its replay is refused
    assert (await post(good)).status == 200
    replay = await post(good)
    assert replay.status == 401 and await error_of(replay) == "replayed_nonce"


async def test_validator_task_listing_needs_a_permit_and_hides_ground_truth(harness: Harness) -> None:
    n = harness.neurons
    task = await harness.done_task()
    await harness.distributed_task()  # not done: not listed
    resp = await harness.signed("GET", "/api/v1/validator/tasks", n.validator_a)
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert [t["task_id"] for t in page["tasks"]] == [task.task_id]
    listed = page["tasks"][0]
    assert listed["input"]["text"] == task.input.text
    assert sorted(r["uid"] for r in listed["responses"]) == [3, 4]
    raw = await resp.text()
    assert "ground_truth" not in raw and "synthetic" not in raw and "owner" not in raw

    for signer, status, code in ((n.miner_1, 403, "no_validator_permit"), (n.stranger, 403, "unknown_hotkey")):
        resp = await harness.signed("GET", "/api/v1/validator/tasks", signer)
        assert resp.status == status and await error_of(resp) == code
    resp = await harness.client.get("/api/v1/validator/tasks", headers=auth())  # an API key is not a signature
    assert resp.status == 401 and await error_of(resp) == "missing_signature"


async def test_validator_fetches_input_audio(harness: Harness, wav_bytes: bytes) -> None:
    ref = await harness.blobs.put(wav_bytes, content_type="audio/wav")
    resp = await harness.signed("GET", f"/api/v1/validator/blobs/{ref.key}", harness.neurons.validator_b)
    assert resp.status == 200 and await resp.read() == wav_bytes
    resp = await harness.signed("GET", f"/api/v1/validator/blobs/{'0' * 64}", harness.neurons.validator_b)
    assert resp.status == 404 and await error_of(resp) == "blob_not_found"
    resp = await harness.signed("GET", "/api/v1/validator/blobs/..%2F..%2Fetc", harness.neurons.validator_b)
    assert resp.status in (400, 404)


async def test_evaluation_approves_at_stake_quorum_once_per_validator(harness: Harness) -> None:
    n = harness.neurons
    task = await harness.done_task()
    rewards = [{"uid": 3, "hotkey": n.miner_1.ss58_address, "reward": 0.2},
               {"uid": 4, "hotkey": n.miner_2.ss58_address, "reward": 0.9}]
    # validator A holds 300 of 1000 permitted stake: below the 0.5 quorum
    resp = await harness.signed("POST", "/api/v1/validator/evaluation", n.validator_a,
                                {"task_id": task.task_id, "rewards": rewards})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "done" and abs(body["stake_share"] - 0.3) < 1e-9 and body["evaluations"] == 1
    again = await harness.signed("POST", "/api/v1/validator/evaluation", n.validator_a,
                                 {"task_id": task.task_id, "rewards": rewards})
    assert again.status == 409 and await error_of(again) == "already_evaluated"
    # validator B (600) brings the share to 0.9: approved, best stake-weighted answer wins
    flipped = [{**rewards[0], "reward": 0.6}, {**rewards[1], "reward": 0.5}]
    resp = await harness.signed("POST", "/api/v1/validator/evaluation", n.validator_b,
                                {"task_id": task.task_id, "rewards": flipped})
    body = await resp.json()
    assert body["status"] == "approved" and abs(body["stake_share"] - 0.9) < 1e-9
    final = await harness.store.get_final_result(task.task_id)
    # uid 4: (0.9*300 + 0.5*600)/900 = 0.633 beats uid 3: (0.2*300 + 0.6*600)/900 = 0.467
    assert final is not None and final.uid == 4 and abs(final.score - 570 / 900) < 1e-9
    assert final.text == "second summary"
    result = await (await harness.client.get(f"/api/v1/task/{task.task_id}/result", headers=auth())).json()
    assert result["stage"] == "final" and result["uid"] == 4


async def test_evaluation_refusals(harness: Harness) -> None:
    n = harness.neurons
    task = await harness.done_task()
    pending = await harness.distributed_task()
    good = [{"uid": 3, "hotkey": n.miner_1.ss58_address, "reward": 0.5}]
    cases = [
        (n.miner_1, {"task_id": task.task_id, "rewards": good}, 403, "no_validator_permit"),
        (n.validator_a, {"task_id": pending.task_id, "rewards": good}, 409, "task_not_ready"),
        (n.validator_a, {"task_id": task.task_id, "rewards": [{**good[0], "uid": 0}]}, 409, "unknown_miner"),
        (n.validator_a, {"task_id": task.task_id, "rewards": [{**good[0], "reward": 7}]}, 400, "invalid_request"),
        (n.validator_a, {"task_id": task.task_id, "rewards": []}, 400, "invalid_request"),
        (n.validator_a, {"task_id": "missing", "rewards": good}, 404, "task_not_found"),
        (n.validator_a, {"task_id": task.task_id, "rewards": good, "stake": 1e9}, 400, "unknown_field"),
    ]
    for signer, payload, status, code in cases:
        resp = await harness.signed("POST", "/api/v1/validator/evaluation", signer, payload)
        assert resp.status == status, (code, await resp.text())
        assert await error_of(resp) == code
    assert await harness.store.list_evaluations(task.task_id) == []


async def test_signed_endpoints_without_a_metagraph_refuse_clearly(harness: Harness) -> None:
    harness.metagraph[0] = None
    resp = await harness.signed("GET", "/api/v1/validator/tasks", harness.neurons.validator_a)
    assert resp.status == 503 and await error_of(resp) == "no_metagraph"


async def test_strangers_are_refused_before_their_body_is_read_or_their_nonces_kept(tmp_path: Path) -> None:
    """Anyone can make a keypair and sign: an unregistered signer must not fill the nonce cache (whose
    evictions raise the staleness floor for everyone) nor have a large body read and hashed."""
    harness = await start_harness(tmp_path, nonce_cache_size=100)
    try:
        n = harness.neurons
        body = b'{"task_id": "x", "text": "' + b"a" * 100 + b'"}'
        for _ in range(110):  # signed a little in the future, as the clock-skew allowance permits
            headers = sign_request(n.stranger, body, harness.own_hotkey, now=time.time() + 4)
            resp = await harness.client.post("/api/v1/miner/response", data=body,
                                             headers={**headers, "Content-Type": "application/json"})
            assert resp.status == 403 and await error_of(resp) == "unknown_hotkey"
        resp = await harness.signed("GET", "/api/v1/validator/tasks", n.validator_a)
        assert resp.status == 200, await resp.text()

        huge = b"x" * (signed_body_limit(harness.client.server.app[CONTEXT]) + 1)
        resp = await harness.client.post("/api/v1/miner/response", data=io.BytesIO(huge),
                                         headers=sign_request(n.stranger, huge, harness.own_hotkey))
        assert resp.status == 403 and await error_of(resp) == "unknown_hotkey"
    finally:
        await stop_harness(harness)


async def test_evaluation_breakdown_must_be_finite_and_small(harness: Harness) -> None:
    """NaN/Infinity parse as floats but are stored as null, which no longer reads back as a float:
    one such evaluation made the task's evaluations unreadable (500s from then on)."""
    n = harness.neurons
    task = await harness.done_task()
    miner = n.miner_1.ss58_address
    bodies = [
        '{"task_id": "%s", "rewards": [{"uid": 3, "hotkey": "%s", "reward": 0.5, "breakdown": {"wer": NaN}}]}',
        '{"task_id": "%s", "rewards": [{"uid": 3, "hotkey": "%s", "reward": 0.5, "breakdown": {"x": -Infinity}}]}',
        '{"task_id": "%s", "rewards": [{"uid": 3, "hotkey": "%s", "reward": 0.5, "breakdown": {'
        + ", ".join(f'"k{i}": 0.5' for i in range(1_000)) + "}}]}",
    ]
    for template in bodies:
        body = (template % (task.task_id, miner)).encode()
        resp = await harness.client.post("/api/v1/validator/evaluation", data=body, headers={
            **sign_request(n.validator_b, body, harness.own_hotkey), "Content-Type": "application/json"})
        assert resp.status == 400 and await error_of(resp) == "invalid_request", await resp.text()
    assert await harness.store.list_evaluations(task.task_id) == []
    good = [{"uid": 3, "hotkey": miner, "reward": 0.5, "breakdown": {"wer": 0.1}}]
    resp = await harness.signed("POST", "/api/v1/validator/evaluation", n.validator_b,
                                {"task_id": task.task_id, "rewards": good})
    assert resp.status == 200, await resp.text()
    [stored] = await harness.store.list_evaluations(task.task_id)
    assert stored.rewards[0].breakdown == {"wer": 0.1}
