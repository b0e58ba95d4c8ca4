"""A synapse whose fields break the protocol's bounds is a 400 from the miner, never a 500.

bittensor's axon rebuilds the synapse from the body in a route dependency; a pydantic error there
(100,001 characters where 100,000 are allowed) escaped as 500 Internal Server Error.
"""

from __future__ import annotations

import pytest

from protocol import MAX_SUMMARY_SOURCE_CHARS, SummarizationSynapse
from subnet_proxy.config import AxonSettings
from subnet_proxy.miner.server import MinerAxon
from subnet_proxy.outbound import OutboundPolicy
from subnet_proxy.validator.dendrite import FanoutDendrite
from tests.conftest import free_port
from tests.miner.test_delivery import VALIDATOR, _service
from tests.validator.axons import neuron


@pytest.mark.parametrize("extra", [1, 1000])
async def test_text_over_the_protocol_limit_is_a_400(wallet_factory, extra):
    wallet = wallet_factory("oversized-miner")
    service = _service(delay=0.0, deliverer=None)
    port = free_port()
    axon = MinerAxon(AxonSettings(ip="127.0.0.1", port=port, external_ip="127.0.0.1"), wallet, service,
                     max_body_bytes=8 * 1024 * 1024)
    await axon.start()
    dendrite = FanoutDendrite(VALIDATOR, external_ip="127.0.0.1", outbound=OutboundPolicy(allow_private=True))
    try:
        too_long = SummarizationSynapse.model_construct(text="w" * (MAX_SUMMARY_SOURCE_CHARS + extra),
                                                        max_words=None)
        assert len(too_long.text) > MAX_SUMMARY_SOURCE_CHARS
        [result] = await dendrite.query(too_long, [neuron(1, wallet.hotkey.ss58_address, port)], timeout=10.0,
                                        max_output_bytes=1 << 20)
        assert result.outcome == "http_error" and result.status_code == 400, result
    finally:
        await dendrite.close()
        await axon.stop()
        service.engines.close()
