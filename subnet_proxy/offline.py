"""Keep bittensor off the internet: pin the "external IP" it would otherwise look up online.

bittensor 10.5's ``Dendrite()`` (and ``Axon()`` without ``external_ip``) ask public services for
this machine's IP and raise ``ExternalIPNotFound`` when offline. Local runs and tests pin it to
loopback before building either, so nothing leaves the machine.
"""

from __future__ import annotations

from bittensor.utils import networking


def pin_external_ip(ip: str = "127.0.0.1") -> None:
    """Make every later bittensor external-IP lookup answer ``ip`` without any network call."""

    def _pinned() -> str:
        return ip

    networking.get_external_ip = _pinned
