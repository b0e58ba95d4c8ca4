"""The local chain: registration, uid replacement, blocks with wall time, weights, several processes."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from pathlib import Path

import pytest

from subnet_proxy.chain import ChainError, open_chain
from subnet_proxy.chain.local import LocalChain, Registration, default_chain_file
from subnet_proxy.config import Settings


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def chain(path: Path, clock: Clock, hotkey: str | None = None, **kw) -> LocalChain:
    return LocalChain(path, netuid=7, hotkey=hotkey, block_time_s=12.0, clock=clock, **kw)


async def test_register_assigns_uids_in_order_and_updates_in_place(tmp_path: Path) -> None:
    clock = Clock()
    c = chain(tmp_path / "c.json", clock)
    assert await c.register(Registration(hotkey="hk-a", coldkey="ck", ip="127.0.0.1", port=9001)) == 0
    assert await c.register(Registration(hotkey="hk-b", coldkey="ck", ip="127.0.0.1", port=9002)) == 1
    # the same hotkey again keeps its uid and takes the new axon
    assert await c.register(Registration(hotkey="hk-a", coldkey="ck", ip="127.0.0.1", port=9101, stake=5.0)) == 0
    snap = await c.snapshot()
    assert [(n.uid, n.hotkey, n.port, n.stake) for n in snap.neurons] == [(0, "hk-a", 9101, 5.0),
                                                                       (1, "hk-b", 9002, 0.0)]
    assert snap.by_hotkey("hk-b").is_serving
    assert await c.is_registered("hk-b") and not await c.is_registered("hk-z")


async def test_reregistering_a_uid_with_a_new_hotkey_replaces_it(tmp_path: Path) -> None:
    clock = Clock()
    c = chain(tmp_path / "c.json", clock)
    await c.register(Registration(hotkey="old", coldkey="ck", port=1))
    await c.register(Registration(hotkey="other", coldkey="ck", port=2))
    clock.now += 120  # 10 blocks later
    assert await c.register(Registration(hotkey="new", coldkey="ck2", port=3), uid=0) == 0
    snap = await c.snapshot()
    assert snap.n == 2
    assert snap.by_uid(0).hotkey == "new" and snap.by_uid(0).last_update == 10
    assert not await c.is_registered("old")
    with pytest.raises(ValueError, match="not registered"):
        await c.register(Registration(hotkey="x", coldkey="ck"), uid=5)
    with pytest.raises(ValueError, match="already registered"):
        await c.register(Registration(hotkey="new", coldkey="ck"), uid=1)


async def test_bad_registration_is_refused(tmp_path: Path) -> None:
    c = chain(tmp_path / "c.json", Clock())
    with pytest.raises(ValueError, match="port"):
        await c.register(Registration(hotkey="a", coldkey="b", port=70000))
    with pytest.raises(ValueError, match="stake"):
        await c.register(Registration(hotkey="a", coldkey="b", stake=float("nan")))
    small = chain(tmp_path / "d.json", Clock(), max_uids=1)
    await small.register(Registration(hotkey="a", coldkey="b"))
    with pytest.raises(ChainError, match="full"):
        await small.register(Registration(hotkey="c", coldkey="b"))


async def test_blocks_advance_with_wall_time(tmp_path: Path) -> None:
    clock = Clock()
    c = chain(tmp_path / "c.json", clock)
    await c.register(Registration(hotkey="a", coldkey="b"))  # creates the file: genesis now
    assert await c.current_block() == 0
    clock.now += 12 * 5 + 1
    assert await c.current_block() == 5
    assert (await c.snapshot()).block == 5


async def test_set_weights_is_processed_recorded_and_rate_limited(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    admin = chain(path, clock, weights_rate_limit=2)  # the rate limit is fixed when the file is created
    await admin.register(Registration(hotkey="val", coldkey="ck", stake=10_000, validator_permit=True))
    await admin.register(Registration(hotkey="m1", coldkey="ck", port=1))
    await admin.register(Registration(hotkey="m2", coldkey="ck", port=2))
    val = chain(path, clock, hotkey="val")
    clock.now += 12 * 3
    res = await val.set_weights([1, 2], [3.0, 1.0], version_key=1000)
    assert res.success, res.message
    (record,) = await val.weights_history()
    assert record.block == 3 and record.uid == 0 and record.version_key == 1000
    assert dict(zip(record.uids, record.weights, strict=True))[1] == pytest.approx(0.75, abs=1e-3)
    assert sum(record.weights) == pytest.approx(1.0, abs=1e-5)
    assert (await val.snapshot()).by_uid(0).last_update == 3
    # calls within the rate limit (2 blocks) are refused, not recorded
    for _ in range(2):
        clock.now += 12
        res = await val.set_weights([1, 2], [1.0, 1.0], version_key=1000)
        assert not res.success and "too soon" in res.message
    assert len(await val.weights_history()) == 1
    clock.now += 12
    assert (await val.set_weights([1, 2], [1.0, 1.0], version_key=1000)).success


async def test_set_weights_refusals(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    await chain(path, clock).register(Registration(hotkey="miner", coldkey="ck", port=1))
    assert "not registered" in (await chain(path, clock, hotkey="ghost").set_weights([0], [1.0], version_key=1)).message
    assert "permit" in (await chain(path, clock, hotkey="miner").set_weights([0], [1.0], version_key=1)).message
    await chain(path, clock).register(Registration(hotkey="val", coldkey="ck", validator_permit=True))
    val = chain(path, clock, hotkey="val")
    assert "not registered" in (await val.set_weights([9], [1.0], version_key=1)).message
    assert "finite" in (await val.set_weights([0], [float("inf")], version_key=1)).message
    assert "2 uids but 1" in (await val.set_weights([0, 1], [1.0], version_key=1)).message
    assert "no hotkey" in (await chain(path, clock).set_weights([0], [1.0], version_key=1)).message


async def test_weights_below_the_subnet_weights_version_are_refused(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    assert await chain(path, clock).weights_version() == 0  # no file yet: the default
    admin = chain(path, clock, weights_version=1200)  # fixed when the file is created, like the rate limit
    await admin.register(Registration(hotkey="val", coldkey="ck", stake=10_000, validator_permit=True))
    await admin.register(Registration(hotkey="m1", coldkey="ck", port=1))
    val = chain(path, clock, hotkey="val")
    assert await val.weights_version() == 1200
    clock.now += 12 * 3
    refused = await val.set_weights([1], [1.0], version_key=1100)
    assert not refused.success and "below the subnet's weights version 1200" in refused.message
    assert await val.weights_history() == []
    assert (await val.set_weights([1], [1.0], version_key=1200)).success


async def test_history_is_bounded(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    await chain(path, clock).register(Registration(hotkey="val", coldkey="ck", validator_permit=True))
    val = chain(path, clock, hotkey="val", history_limit=3)
    for _ in range(5):
        clock.now += 24
        assert (await val.set_weights([0], [1.0], version_key=1)).success
    history = await val.weights_history()
    assert [r.block for r in history] == [6, 8, 10]
    for _ in range(2):
        clock.now += 24
        assert (await val.set_weights([0], [1.0], version_key=1)).success
    assert len(val.history_path.read_text().splitlines()) == 3  # 7 lines > 2 x 3: trimmed to the newest 3
    assert [r.block for r in await val.weights_history()] == [10, 12, 14]
    assert "weights" not in json.loads(path.read_text())  # snapshots never parse the history
    with val.history_path.open("a") as fh:
        fh.write("{torn line\n")
    assert [r.block for r in await val.weights_history(limit=2)] == [12, 14]


async def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ChainError, match="not valid JSON"):
        await chain(path, Clock()).snapshot()
    path.write_text(json.dumps({"format": 1, "netuid": 3}))
    with pytest.raises(ChainError, match="netuid 3"):
        await chain(path, Clock()).snapshot()
    assert path.read_text() == json.dumps({"format": 1, "netuid": 3})  # nothing overwritten
    path.write_text(json.dumps({"format": 1, "netuid": 7, "genesis": 0, "block_time_s": 12, "weights_rate_limit": 1,
                                "neurons": [{"uid": 0}], "weights": []}))
    with pytest.raises(ChainError, match="malformed neuron"):
        await chain(path, Clock()).snapshot()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ChainError, match="cannot write"):
        await chain(blocked / "c.json", Clock()).register(Registration(hotkey="a", coldkey="b"))


async def test_open_chain_under_mock_shares_one_file(tmp_path: Path, wallet_factory) -> None:
    settings = Settings.model_validate({"netuid": 4, "neuron": {"data_dir": str(tmp_path)},
                                        "mock": {"enabled": True, "block_time_s": 0.5}})
    wallet = wallet_factory("val")
    c = open_chain(settings, wallet)
    assert isinstance(c, LocalChain)
    assert c.path == default_chain_file(tmp_path, 4) and c.hotkey == wallet.hotkey.ss58_address
    reader = open_chain(settings, None)
    await c.register(Registration.of_wallet(wallet, validator_permit=True))
    assert await reader.is_registered(wallet.hotkey.ss58_address)


BLOCK_S = 0.02  # fast blocks so the weights writer passes the 1-block rate limit quickly


def _register_many(path: str, prefix: str, count: int) -> None:
    async def run() -> None:
        c = LocalChain(Path(path), netuid=7, block_time_s=BLOCK_S)
        for i in range(count):
            await c.register(Registration(hotkey=f"{prefix}-{i}", coldkey="ck", ip="127.0.0.1", port=1000 + i))

    asyncio.run(run())


def _set_weights_many(path: str, count: int) -> None:
    async def run() -> None:
        c = LocalChain(Path(path), netuid=7, hotkey="val", block_time_s=BLOCK_S)
        done = 0
        while done < count:
            if (await c.set_weights([0], [1.0], version_key=done)).success:
                done += 1
            await asyncio.sleep(BLOCK_S)

    asyncio.run(run())


@pytest.mark.slow
async def test_concurrent_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    await LocalChain(path, netuid=7, block_time_s=BLOCK_S).register(
        Registration(hotkey="val", coldkey="ck", stake=10_000, validator_permit=True))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_register_many, args=(str(path), name, 40)) for name in ("p", "q")]
    procs.append(ctx.Process(target=_set_weights_many, args=(str(path), 10)))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    chain = LocalChain(path, netuid=7, block_time_s=BLOCK_S)
    snap = await chain.snapshot()
    assert snap.n == 81
    assert [n.uid for n in snap.neurons] == list(range(81))
    assert {n.hotkey for n in snap.neurons[1:]} == {f"{p}-{i}" for p in ("p", "q") for i in range(40)}
    history = await chain.weights_history()
    assert [r.version_key for r in history] == list(range(10))  # every accepted call recorded, in order
    assert snap.by_hotkey("val").last_update == history[-1].block


async def test_commitments_are_published_by_registered_hotkeys_and_shared(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    admin = chain(path, clock)
    for hk in ("hk-a", "hk-b"):
        await admin.register(Registration(hotkey=hk, coldkey="ck"))
    a, b = chain(path, clock, hotkey="hk-a"), chain(path, clock, hotkey="hk-b")
    await a.publish("http://127.0.0.1:8001")
    await b.publish("http://127.0.0.1:8002")
    await a.publish("http://127.0.0.1:9001")  # replaces its previous one
    assert await chain(path, clock).commitments() == {"hk-a": "http://127.0.0.1:9001", "hk-b": "http://127.0.0.1:8002"}
    with pytest.raises(ChainError, match="not registered"):
        await chain(path, clock, hotkey="hk-z").publish("http://x")
    with pytest.raises(ChainError, match="no hotkey"):
        await admin.publish("http://x")
    with pytest.raises(ChainError, match="1 to 128 bytes"):
        await a.publish("")
    # a uid taken over by another hotkey: the old hotkey's commitment is gone with it
    await admin.register(Registration(hotkey="hk-c", coldkey="ck"), uid=1)
    assert await admin.commitments() == {"hk-a": "http://127.0.0.1:9001"}
