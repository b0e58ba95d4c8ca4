"""Between the dendrite and the task store: an axon's result as the MinerResponse to record.

The kind's own work (its synapse, its answer check, its limits) is in ``subnet_proxy.kinds``; here is
only what the validator adds: every synapse names its task (``task_id``) and, when this validator's
side-server is reachable by miners, where a late answer may be delivered (``delivery_url``, see
``delivery_endpoint``), and a failed call (timeout, unreachable, refused) becomes a response state.
"""

from __future__ import annotations

from protocol.synapses import check_delivery_url
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.kinds import AnswerRefused
from subnet_proxy.kinds.wire import NO_OUTPUT, stored_response, synapse_output
from subnet_proxy.tasks import MinerResponse, ResponseState, Task
from subnet_proxy.validator.dendrite import AxonResult, Outcome

_STATE_OF: dict[Outcome, ResponseState] = {
    "ok": "ok", "timeout": "timeout", "unreachable": "error", "http_error": "error",
    "oversize": "invalid", "invalid": "invalid",
}


#: the side-server endpoint miners deliver late answers to (``server.routes_network``).
MINER_RESPONSE_PATH = "/api/v1/miner/response"


def delivery_endpoint(base_url: str | None) -> str | None:
    """The ``delivery_url`` synapses offer for a side-server at ``base_url``; None offers none.

    Raises ValueError for a base the protocol would refuse, so a bad ``--proxy.public_url`` fails
    when the validator starts, not on every task.
    """
    if base_url is None:
        return None
    return check_delivery_url(base_url.rstrip("/") + MINER_RESPONSE_PATH)


async def decode_result(task: Task, result: AxonResult, blobs: BlobStore) -> MinerResponse:
    """The MinerResponse for one axon result: a valid answer stored (its audio in ``blobs``), an answer
    the kind refuses ``invalid`` (``NO_OUTPUT`` when it carries none), a failed call its state."""
    identity = dict(task_id=task.task_id, hotkey=result.hotkey, uid=result.uid, latency_s=result.latency_s,
                    status_code=result.status_code)
    if not result.ok or result.synapse is None:
        return MinerResponse(state=_STATE_OF[result.outcome], message=result.message, **identity)
    try:
        output = await synapse_output(task, result.synapse)
    except AnswerRefused as exc:
        return MinerResponse(state="invalid", message=NO_OUTPUT if exc.empty else exc.message, **identity)
    return await stored_response(output, blobs, task_id=task.task_id, hotkey=result.hotkey, uid=result.uid,
                                 latency_s=result.latency_s, status_code=result.status_code)
