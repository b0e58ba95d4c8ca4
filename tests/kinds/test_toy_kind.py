"""A fourth task kind defined in the test tree alone runs end to end; registering is undone after.

"reverse" (``reverse_kind.py``) is registered, then: a client submits it through the side-server's
HTTP route the registry built, the forward loop claims it, the real dendrite sends its own synapse
to a real bittensor axon on 127.0.0.1, the answer is checked by the kind, scored by its reward,
evaluated and approved, and the client fetches the result over HTTP.
"""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import typing

import pytest

from subnet_proxy.cli import build_parser
from subnet_proxy.client import ProxyClient
from subnet_proxy.keys import Role
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.kinds import REGISTRY, register, submit_path
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import TaskStatus
from tests.kinds.reverse_kind import KIND, REVERSE, ReverseRequest, ReverseSynapse

TEXT = "A toy kind, registered by a test."


@pytest.fixture
def reverse_kind() -> typing.Iterator[None]:
    undo = register(REVERSE)
    yield
    undo()


def reverser(wrong: bool = False) -> typing.Callable:
    async def forward(synapse: ReverseSynapse) -> ReverseSynapse:
        synapse.reversed_text = synapse.text if wrong else synapse.text[::-1]
        return synapse

    return forward


async def test_a_toy_kind_runs_end_to_end(reverse_kind, harness) -> None:
    good = await harness.add_miner("reverser", reverser())
    bad = await harness.add_miner("echoer", reverser(wrong=True))
    validator = await harness.validator(sample_size=2)
    keys = SqliteKeyStore(harness.root / "keys.db")
    _, api_key = await keys.create(name="client", role=Role.CLIENT)
    app = create_app(validator.settings, store=WatchedStore(harness.store), blobs=harness.blobs, keys=keys,
                     metagraph=validator.metagraph, own_hotkey=validator.hotkey)
    server = await start_server(app, validator.settings, host="127.0.0.1", port=0)
    try:
        async with ProxyClient(server.url, api_key=api_key) as client:
            accepted = await client.submit(submit_path(KIND), ReverseRequest(text=TEXT))
            task = await harness.wait_status(accepted.task_id, TaskStatus.APPROVED)
            result = await client.wait(accepted.task_id, stage="final", timeout_s=10)
            status = await client.status(accepted.task_id)
    finally:
        await server.stop()
        await keys.close()

    assert task.kind == KIND and submit_path(KIND) == "/api/v1/reverse"
    assert result.stage == "final" and result.text == TEXT[::-1] and result.uid == good
    assert status.kind == KIND and status.status is TaskStatus.APPROVED
    responses = {r.uid: r for r in await harness.store.list_responses(accepted.task_id)}
    assert responses[good].text == TEXT[::-1] and responses[bad].text == TEXT
    [evaluation] = await harness.store.list_evaluations(accepted.task_id)
    rewards = {r.uid: r for r in evaluation.rewards}
    assert rewards[good].reward > 0.8 and rewards[bad].reward == 0.0
    assert rewards[bad].breakdown == {"rejected_wrong": 1.0}


def test_registering_is_undone_and_a_name_is_taken_once(reverse_kind) -> None:
    assert REGISTRY[KIND] is REVERSE and list(REGISTRY)[-1] == KIND
    args = build_parser().parse_args(["submit", "reverse", "abc", "--wait"])  # its CLI verb, from the registry
    assert args.spec is REVERSE and args.text == "abc" and args.wait
    with pytest.raises(ValueError, match="already registered"):
        register(REVERSE)


def test_the_toy_kind_left_no_trace() -> None:
    assert KIND not in REGISTRY and list(REGISTRY) == ["transcription", "tts", "summarization"]
