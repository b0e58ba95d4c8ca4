"""Outside local mode, axons on non-public addresses are dropped at resync: never queried, logged once."""

from __future__ import annotations

import logging

from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.validator.loops import MetagraphView, ResyncLoop
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.selection import candidates

ADDRESSES = ["8.8.8.8", "127.0.0.1", "10.0.0.7", "169.254.169.254", "224.0.0.1", "192.168.1.2", "::1",
             "2606:4700:4700::1111", "0.0.0.0"]


class FixedChain:
    """Only what the resync reads: one snapshot, always the same."""

    def __init__(self) -> None:
        neurons = tuple(Neuron(uid=uid, hotkey=f"hk{uid}", coldkey="c", stake=float(uid), ip=ip, port=8091,
                               validator_permit=False, last_update=0) for uid, ip in enumerate(ADDRESSES))
        self.snapshot_ = MetagraphSnapshot(netuid=1, block=42, neurons=neurons)

    async def snapshot(self) -> MetagraphSnapshot:
        return self.snapshot_


async def test_private_axons_are_never_candidates_and_logged_once_per_resync(tmp_path, caplog):
    chain = FixedChain()
    view = MetagraphView(MetagraphSnapshot(netuid=1, block=0, neurons=()))
    loop = ResyncLoop(chain, view, ScoreBook.restore(tmp_path / "s.json", alpha=0.1), interval_s=1.0)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    await loop.run_step()
    assert [n.uid for n in candidates(view(), "me")] == [0, 7]
    assert [n.stake for n in view().neurons] == [float(uid) for uid in range(len(ADDRESSES))]  # stake stays
    warnings = [r for r in caplog.records if "non-public" in r.getMessage()]
    assert len(warnings) == 1 and "[1, 2, 3, 4, 5, 6]" in warnings[0].getMessage()
    await loop.run_step()
    assert len([r for r in caplog.records if "non-public" in r.getMessage()]) == 2  # once per resync


async def test_local_mode_keeps_loopback_axons(tmp_path):
    view = MetagraphView(MetagraphSnapshot(netuid=1, block=0, neurons=()))
    loop = ResyncLoop(FixedChain(), view, ScoreBook.restore(tmp_path / "s.json", alpha=0.1),  # type: ignore[arg-type]
                      interval_s=1.0, public_axons_only=False)
    await loop.run_step()
    assert [n.uid for n in candidates(view(), "me")] == [0, 1, 2, 3, 4, 5, 6, 7]
