"""The real chain over a faked ``bt.Subtensor`` (no node can run here) serving real ``bt.Metagraph``
objects: timeouts, retries, rate limit, weight processing with bittensor's own
``process_weights_for_netuid``."""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bittensor as bt
import numpy as np
import pytest
from bittensor.core.chain_data import AxonInfo
from bittensor.core.types import ExtrinsicResponse

from subnet_proxy.chain import ChainError, Registration, open_chain
from subnet_proxy.chain.bittensor import BittensorChain, snapshot_of
from subnet_proxy.config import Settings
from tests.conftest import LoopTicks


def real_metagraph(hotkeys: list[str], block: int, last_update: list[int], permits: list[bool]) -> bt.Metagraph:
    """A real ``bt.Metagraph`` (never synced: no network) filled in as a lite sync would fill it."""
    metagraph = bt.Metagraph(netuid=3, network="local", sync=False)
    metagraph.n = np.array(len(hotkeys), dtype=np.int64)
    metagraph.uids = np.arange(len(hotkeys), dtype=np.int64)
    metagraph.stake = np.array([10_000.0 if p else 1.0 for p in permits], dtype=np.float32)
    metagraph.axons = [AxonInfo(version=1, ip="0.0.0.0", port=0, ip_type=4, hotkey=h, coldkey=f"ck-{h}") if p
                       else AxonInfo(version=1, ip="10.1.2.3", port=8091 + i, ip_type=4, hotkey=h, coldkey=f"ck-{h}")
                       for i, (h, p) in enumerate(zip(hotkeys, permits, strict=True))]
    metagraph.validator_permit = np.array(permits, dtype=bool)
    metagraph.last_update = np.array(last_update, dtype=np.int64)
    metagraph.block = np.array([block], dtype=np.int64)  # the shape of a fresh metagraph's block
    return metagraph


@dataclass
class FakeSubtensor:
    """Stands in for bt.Subtensor: the calls the chain makes, with faults to inject."""

    metagraph_obj: bt.Metagraph
    rate_limit: int = 100
    weights_version: int | None = 1100
    max_weight_limit_value: float = 0.5
    min_allowed_weights_value: int = 1
    fail_next: int = 0
    stall: threading.Event | None = None
    set_weights_calls: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def _maybe_fail(self) -> None:
        if self.stall is not None:
            self.stall.wait(5)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("websocket closed")

    def metagraph(self, netuid: int, lite: bool = True) -> bt.Metagraph:
        self._maybe_fail()
        return self.metagraph_obj

    def get_current_block(self) -> int:
        self._maybe_fail()
        return int(np.asarray(self.metagraph_obj.block).reshape(-1)[0])

    def is_hotkey_registered(self, hotkey: str, netuid: int) -> bool:
        return hotkey in self.metagraph_obj.hotkeys

    def get_uid_for_hotkey_on_subnet(self, hotkey: str, netuid: int) -> int | None:
        hotkeys = list(self.metagraph_obj.hotkeys)
        return hotkeys.index(hotkey) if hotkey in hotkeys else None

    def weights_rate_limit(self, netuid: int) -> int:
        return self.rate_limit

    def min_allowed_weights(self, netuid: int) -> int:
        return self.min_allowed_weights_value

    def get_hyperparameter(self, param_name: str, netuid: int, block: int | None = None) -> Any:
        self._maybe_fail()
        return {"WeightsVersionKey": self.weights_version}[param_name]

    def max_weight_limit(self, netuid: int) -> float:
        return self.max_weight_limit_value

    def set_weights(self, **kwargs: Any) -> ExtrinsicResponse:
        self.set_weights_calls.append(kwargs)
        return ExtrinsicResponse(True, "Success")

    def close(self) -> None:
        self.closed = True


class Hotkey:
    ss58_address = "val"


class FakeWallet:
    hotkey = Hotkey()


def make(sub: FakeSubtensor, **kw: Any) -> tuple[BittensorChain, list[FakeSubtensor]]:
    built: list[FakeSubtensor] = []

    def factory() -> FakeSubtensor:
        built.append(sub)
        return sub

    kw.setdefault("call_timeout", 2.0)
    kw.setdefault("backoff_s", 0.01)
    return BittensorChain(factory, netuid=3, wallet=FakeWallet(), **kw), built


def graph(block: int = 1000, last_update_val: int = 800) -> bt.Metagraph:
    return real_metagraph(["val", "m1", "m2", "m3"], block, [last_update_val, 0, 0, 0], [True, False, False, False])


async def test_snapshot_converts_the_metagraph() -> None:
    chain, _ = make(FakeSubtensor(graph()))
    snap = await chain.snapshot()
    assert snap.netuid == 3 and snap.block == 1000 and snap.n == 4
    val, m1 = snap.by_uid(0), snap.by_uid(1)
    assert val.validator_permit and val.stake == 10_000 and not val.is_serving and val.last_update == 800
    assert m1.hotkey == "m1" and m1.coldkey == "ck-m1" and (m1.ip, m1.port) == ("10.1.2.3", 8092) and m1.is_serving
    assert await chain.current_block() == 1000
    assert await chain.is_registered("m2") and not await chain.is_registered("zz")
    await chain.close()


async def test_transient_failures_are_retried_then_surface_as_chain_error() -> None:
    sub = FakeSubtensor(graph(), fail_next=2)
    chain, built = make(sub, attempts=3)
    assert (await chain.snapshot()).n == 4  # two failures, third attempt succeeds
    sub.fail_next = 3
    with pytest.raises(ChainError, match="ConnectionError: websocket closed"):
        await chain.current_block()
    assert len(built) >= 2  # the connection was dropped and rebuilt after a failure
    await chain.close()


async def test_a_stalled_call_times_out_without_freezing_the_loop() -> None:
    stall = threading.Event()
    chain, _ = make(FakeSubtensor(graph(), stall=stall), call_timeout=0.2, attempts=2)
    async with LoopTicks() as ticks:
        start = time.monotonic()
        with pytest.raises(ChainError, match="timed out after 0.2 s"):
            await chain.current_block()
        elapsed = time.monotonic() - start
    stall.set()
    assert 0.4 <= elapsed < 2.0  # two attempts of 0.2 s plus the backoff
    assert ticks.count >= 20  # the event loop kept running meanwhile
    await chain.close()


async def test_set_weights_processes_and_emits_with_the_version_key() -> None:
    sub = FakeSubtensor(graph(block=1000, last_update_val=800), rate_limit=100, max_weight_limit_value=0.5)
    chain, _ = make(sub)
    result = await chain.set_weights([1, 2, 3], [0.9, 0.05, 0.05], version_key=1000)
    assert result.success and result.message == "Success"
    (call,) = sub.set_weights_calls
    assert call["version_key"] == 1000 and call["netuid"] == 3 and call["max_attempts"] == 1
    weights = dict(zip(call["uids"].tolist(), call["weights"].tolist(), strict=True))
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(weights.values()) <= 0.5 + 1e-5  # the subnet's max weight limit was applied
    assert weights[1] > weights[2] == pytest.approx(weights[3])
    # right after a success the validator's own record blocks a "too soon" extrinsic
    again = await chain.set_weights([1], [1.0], version_key=1000)
    assert not again.success and "too soon" in again.message
    assert len(sub.set_weights_calls) == 1
    await chain.close()


async def test_set_weights_honours_the_chain_rate_limit() -> None:
    sub = FakeSubtensor(graph(block=1000, last_update_val=950), rate_limit=100)
    chain, _ = make(sub)
    result = await chain.set_weights([1], [1.0], version_key=1)
    assert not result.success and "50 blocks" in result.message and "rate limit is 100" in result.message
    assert sub.set_weights_calls == []
    sub.metagraph_obj.block = np.array(1051, dtype=np.int64)  # 0-d, as after a sync
    assert (await chain.set_weights([1], [1.0], version_key=1)).success
    await chain.close()


async def test_set_weights_refusals_and_failures_never_raise() -> None:
    sub = FakeSubtensor(real_metagraph(["a", "b"], 1000, [0, 0], [False, False]))
    chain, _ = make(sub, attempts=1)
    assert "not registered" in (await chain.set_weights([0], [1.0], version_key=1)).message
    sub.metagraph_obj = graph()

    def broken(**kwargs: Any) -> ExtrinsicResponse:
        raise ConnectionError("node went away")

    sub.set_weights = broken  # type: ignore[method-assign]
    result = await chain.set_weights([1], [1.0], version_key=1)
    assert not result.success and "node went away" in result.message
    assert "2 uids but 1" in (await chain.set_weights([1, 2], [1.0], version_key=1)).message
    sub.fail_next = 1
    result = await chain.set_weights([1], [1.0], version_key=1)  # the metagraph read fails
    assert not result.success and "websocket closed" in result.message
    await chain.close()
    with pytest.raises(ChainError):  # a closed chain refuses calls with the chain's own error
        await chain.current_block()


async def test_weights_version_is_read_with_retries_and_none_is_zero() -> None:
    sub = FakeSubtensor(graph(), fail_next=1)
    chain, _ = make(sub)
    assert await chain.weights_version() == 1100  # the first attempt failed, the retry read it
    sub.weights_version = None
    assert await chain.weights_version() == 0
    await chain.close()


def test_snapshot_of_handles_an_empty_metagraph() -> None:
    snap = snapshot_of(real_metagraph([], 5, [], []), 9)
    assert snap.n == 0 and snap.block == 5


def test_open_chain_picks_the_real_chain_without_connecting() -> None:
    settings = Settings.model_validate({"subtensor": {"network": "ws://127.0.0.1:1", "call_timeout": 3}})
    chain = open_chain(settings, FakeWallet())  # type: ignore[arg-type]
    assert isinstance(chain, BittensorChain) and chain.netuid == 1
    with pytest.raises(ValueError, match="needs a wallet"):
        open_chain(settings, None)


class SignatureCheckingSubtensor(FakeSubtensor):
    """The fake, except that every call on it must bind to the real ``bt.Subtensor`` method of that
    name (bittensor 10.5): a renamed or misspelt argument, or a method the real client lacks, fails."""

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not inspect.ismethod(attr):
            return attr
        called: set[str] = super().__getattribute__("called")

        def checked(*args: Any, **kwargs: Any) -> Any:
            called.add(name)
            real = getattr(bt.Subtensor, name, None)
            if real is None:
                raise AttributeError(f"bt.Subtensor has no {name}")
            inspect.signature(real).bind(None, *args, **kwargs)
            return attr(*args, **kwargs)

        return checked


async def test_every_subtensor_call_matches_the_real_bittensor_signature() -> None:
    sub = SignatureCheckingSubtensor(graph(block=1000, last_update_val=800))
    sub.called = set()  # type: ignore[attr-defined]
    chain, _ = make(sub)
    await chain.snapshot()
    await chain.current_block()
    assert await chain.is_registered("m1")
    assert (await chain.set_weights([1, 2, 3], [0.5, 0.25, 0.25], version_key=7)).success
    assert await chain.weights_version() == 1100
    await chain.close()
    assert {"metagraph", "get_current_block", "is_hotkey_registered", "weights_rate_limit", "set_weights",
            "min_allowed_weights", "max_weight_limit", "get_hyperparameter", "close"} <= sub.called


class Coldkeypub:
    ss58_address = "cold"


class RegisteringWallet(FakeWallet):
    coldkeypub = Coldkeypub()


async def test_register_serves_the_axon_of_a_hotkey_that_holds_a_uid() -> None:
    from bittensor.core.extrinsics.serving import serve_extrinsic

    served: list[inspect.BoundArguments] = []

    def serve(*args: Any, **kwargs: Any) -> ExtrinsicResponse:
        served.append(inspect.signature(serve_extrinsic).bind(*args, **kwargs))  # the real extrinsic's signature
        return ExtrinsicResponse(True, "Success")

    sub = SignatureCheckingSubtensor(graph())
    sub.called = set()  # type: ignore[attr-defined]
    chain = BittensorChain(lambda: sub, netuid=3, wallet=RegisteringWallet(), call_timeout=2.0, serve=serve)
    uid = await chain.register(Registration.of_wallet(RegisteringWallet(), ip="203.0.113.7", port=8091))  # type: ignore[arg-type]
    assert uid == 0
    [call] = served
    assert (call.arguments["ip"], call.arguments["port"], call.arguments["protocol"], call.arguments["netuid"]) == (
        "203.0.113.7", 8091, 4, 3)
    assert "get_uid_for_hotkey_on_subnet" in sub.called  # type: ignore[attr-defined]
    await chain.close()


async def test_register_refuses_a_hotkey_without_a_uid_or_a_failed_serve() -> None:
    def refuse(*args: Any, **kwargs: Any) -> ExtrinsicResponse:
        return ExtrinsicResponse(False, "Invalid axon ip")

    class Stranger(RegisteringWallet):
        class hotkey:  # noqa: N801
            ss58_address = "stranger"

    sub = FakeSubtensor(graph())
    unknown = BittensorChain(lambda: sub, netuid=3, wallet=Stranger(), call_timeout=2.0, serve=refuse)
    with pytest.raises(ChainError, match="not registered on netuid 3"):
        await unknown.register(Registration.of_wallet(Stranger(), ip="203.0.113.7", port=8091))  # type: ignore[arg-type]
    chain = BittensorChain(lambda: sub, netuid=3, wallet=RegisteringWallet(), call_timeout=2.0, serve=refuse)
    with pytest.raises(ChainError, match="Invalid axon ip"):
        await chain.register(Registration.of_wallet(RegisteringWallet(), ip="203.0.113.7", port=8091))  # type: ignore[arg-type]
    with pytest.raises(ChainError, match="acts for val"):
        await chain.register(Registration(hotkey="m1", coldkey="cold"))
    await unknown.close()
    await chain.close()


class CommittingSubtensor(SignatureCheckingSubtensor):
    """The signature-checked fake with the Commitments pallet: ``set_commitment`` / ``get_all_commitments``."""

    def set_commitment(self, wallet: Any, netuid: int, data: str, **kwargs: Any) -> ExtrinsicResponse:
        self.committed[str(wallet.hotkey.ss58_address)] = data  # type: ignore[attr-defined]
        return ExtrinsicResponse(True, "Success")

    def get_all_commitments(self, netuid: int, block: int | None = None) -> dict[str, str]:
        return dict(self.committed)  # type: ignore[attr-defined]


async def test_commitments_are_written_and_read_through_the_real_signatures() -> None:
    sub = CommittingSubtensor(graph())
    sub.called, sub.committed = set(), {"m1": "junk"}  # type: ignore[attr-defined]
    chain, _ = make(sub)
    await chain.publish("https://val.example:8000")
    assert await chain.commitments() == {"m1": "junk", "val": "https://val.example:8000"}
    with pytest.raises(ChainError, match="1 to 128 bytes"):
        await chain.publish("https://" + "x" * 121)  # 129 bytes: no Raw field holds it
    assert {"set_commitment", "get_all_commitments"} <= sub.called  # type: ignore[attr-defined]
    await chain.close()


async def test_a_refused_commitment_is_a_chain_error() -> None:
    sub = CommittingSubtensor(graph())
    sub.called, sub.committed = set(), {}  # type: ignore[attr-defined]

    def refuse(**kwargs: Any) -> ExtrinsicResponse:
        return ExtrinsicResponse(False, "Not registered")

    sub.set_commitment = refuse  # type: ignore[method-assign]
    chain, _ = make(sub)
    with pytest.raises(ChainError, match="Not registered"):
        await chain.publish("https://val.example")
    await chain.close()


@dataclass
class EpochSchedule:
    last_epoch_block: int = 900
    pending_epoch_at: int = 0
    subnet_epoch_index: int = 9
    tempo: int = 360
    blocks_since_last_step: int = 100
    current_block: int = 1000


@dataclass
class Hyperparameters:
    commit_reveal_period: int = 1


class CommitRevealSubtensor(SignatureCheckingSubtensor):
    """A subnet with commit-reveal on. ``set_weights`` is bittensor's own method, so it picks the
    timelocked-commit extrinsic and encrypts the weights (bittensor-drand) itself; only the node's
    side (composing and sending the call) is faked."""

    set_weights = bt.Subtensor.set_weights  # type: ignore[assignment]

    def commit_reveal_enabled(self, netuid: int, block: int | None = None) -> bool:
        return True

    def blocks_since_last_update(self, netuid: int, uid: int, block: int | None = None) -> int:
        return 200

    def get_subnet_hyperparameters(self, netuid: int, block: int | None = None) -> Hyperparameters:
        return Hyperparameters()

    def get_epoch_schedule_state(self, netuid: int, block: int | None = None) -> EpochSchedule:
        return EpochSchedule()

    def compose_call(self, call_module: str, call_function: str, call_params: dict[str, Any],
                     block: int | None = None) -> dict[str, Any]:
        return {"module": call_module, "function": call_function, **call_params}

    def sign_and_send_extrinsic(self, call: Any, wallet: Any, sign_with: str = "coldkey", **kwargs: Any) -> Any:
        self.sent.append((call, sign_with))  # type: ignore[attr-defined]
        return ExtrinsicResponse(True, "Success")


async def test_set_weights_on_a_commit_reveal_subnet_commits_through_bittensors_path(tmp_path: Any) -> None:
    from subnet_proxy.wallets import local_wallet

    wallet = local_wallet(tmp_path, "val")
    hotkey = wallet.hotkey.ss58_address
    sub = CommitRevealSubtensor(real_metagraph([hotkey, "m1", "m2"], 1000, [800, 0, 0], [True, False, False]))
    sub.called, sub.sent = set(), []  # type: ignore[attr-defined]
    chain = BittensorChain(lambda: sub, netuid=3, wallet=wallet, call_timeout=10.0)
    result = await chain.set_weights([1, 2], [0.75, 0.25], version_key=1000)
    assert result.success, result.message
    [(call, signer)] = sub.sent  # type: ignore[attr-defined]
    assert (call["module"], call["function"], signer) == ("SubtensorModule", "commit_timelocked_mechanism_weights",
                                                           "hotkey")
    assert call["netuid"] == 3 and isinstance(call["commit"], bytes) and call["reveal_round"] > 0
    assert b"0.75" not in call["commit"]  # encrypted until its drand round
    assert {"commit_reveal_enabled", "get_epoch_schedule_state", "compose_call"} <= sub.called  # type: ignore[attr-defined]
    await chain.close()
