"""Peer discovery: the validators that publish where their side-server is reached, read from the chain.

A validator commits its side-server's base URL (``--proxy.public_url``; under ``--mock`` its own
loopback URL) with ``Chain.publish``, again whenever the chain shows another value, and reads every
commitment at each metagraph resync. Anyone can commit anything, so a commitment counts only when
its hotkey holds a validator permit and it is a plain ``http(s)://host[:port][/path]`` URL (no
credentials, query or fragment) whose host is not a private address (outside local mode). Anything
else is ignored with one log line per hotkey and value, never fatal. Whether a peer is reachable is
learnt by calling it (the peer loop backs off the ones that are not).

The directory also says which validators take part in quorums (``members``): this one and its
peers. A validator that published nothing never evaluates this one's tasks, so its stake is not
waited for (see ``approval``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from subnet_proxy.chain import MAX_COMMITMENT_BYTES, Chain, ChainError, MetagraphSnapshot
from subnet_proxy.outbound import OutboundPolicy, is_public

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Peer:
    """Another validator's side-server: its hotkey (the receiver its signed requests name) and base URL."""

    hotkey: str
    url: str
    stake: float


def peer_url(text: str, policy: OutboundPolicy) -> str | None:
    """The base URL a commitment names (no trailing slash), None when it cannot be a peer's."""
    if len(text.encode("utf-8")) > MAX_COMMITMENT_BYTES or any(ch.isspace() for ch in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if parts.query or parts.fragment or port == 0:
        return None
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if literal and not policy.allow_private and not is_public(host):
        return None
    return text.rstrip("/")


def find_peers(snapshot: MetagraphSnapshot, commitments: dict[str, str], *, own_hotkey: str,
               policy: OutboundPolicy) -> tuple[list[Peer], dict[str, str]]:
    """The peers among ``commitments`` and, by hotkey, the commitments ignored (with why)."""
    peers: list[Peer] = []
    ignored: dict[str, str] = {}
    for hotkey, text in commitments.items():
        if hotkey == own_hotkey:
            continue
        neuron = snapshot.by_hotkey(hotkey)
        if neuron is None or not neuron.validator_permit:
            continue  # miners commit too (other subnets' uses): not a peer, not worth a log line
        url = peer_url(text, policy)
        if url is None:
            ignored[hotkey] = f"not a usable side-server URL: {text[:MAX_COMMITMENT_BYTES]!r}"
            continue
        peers.append(Peer(hotkey=hotkey, url=url, stake=neuron.stake))
    return peers, ignored


#: seconds a published URL is given to show in the chain's commitments before it is published again.
PUBLISH_SETTLE_S = 300.0


class PeerDirectory:
    """The current peers and quorum members; ``refresh`` at each resync publishes and reads."""

    def __init__(self, chain: Chain, *, own_hotkey: str, own_url: str | None, policy: OutboundPolicy,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chain = chain
        self.own_hotkey = own_hotkey
        self.own_url = own_url
        self.policy = policy
        self.clock = clock
        self.peers: list[Peer] = []
        self._logged: dict[str, str] = {}
        # One refresh at a time, and what was last published when: a commitment costs a fee on a real
        # chain, and a read may lag the write by a few blocks; neither a concurrent refresh (the first
        # resync beside ``serve_peers``) nor a lagging read may publish the same URL twice.
        self._refreshing = asyncio.Lock()
        self._published: tuple[str, float] | None = None

    @property
    def members(self) -> frozenset[str]:
        """The validators taking part in quorums: this one and its peers."""
        return frozenset({self.own_hotkey, *(p.hotkey for p in self.peers)})

    async def refresh(self, snapshot: MetagraphSnapshot) -> None:
        """Read the commitments; publish ours when the chain shows another value and this URL was not
        published within ``PUBLISH_SETTLE_S`` (a failure to publish is logged and tried again at the
        next resync). A chain that cannot be read keeps the peers."""
        async with self._refreshing:
            await self._refresh(snapshot)

    async def _refresh(self, snapshot: MetagraphSnapshot) -> None:
        try:
            commitments = await self.chain.commitments()
        except ChainError as exc:
            log.warning("peers: cannot read the commitments, keeping %d peer(s): %s", len(self.peers), exc)
            return
        url = self.own_url
        settling = self._published is not None and self._published[0] == url and \
            self.clock() - self._published[1] < PUBLISH_SETTLE_S
        if url is not None and commitments.get(self.own_hotkey) != url and not settling:
            try:
                await self.chain.publish(url)
                self._published = (url, self.clock())
                log.info("peers: published %s on chain", url)
            except ChainError as exc:
                log.warning("peers: publishing %s failed, retried at the next resync: %s", url, exc)
        peers, ignored = find_peers(snapshot, commitments, own_hotkey=self.own_hotkey, policy=self.policy)
        for hotkey, why in ignored.items():
            if self._logged.get(hotkey) != why:
                log.warning("peers: validator %s ignored: %s", hotkey, why)
        self._logged = ignored
        if {(p.hotkey, p.url) for p in peers} != {(p.hotkey, p.url) for p in self.peers}:
            log.info("peers: %d validator(s) to evaluate for: %s", len(peers), [p.url for p in peers])
        self.peers = peers
