"""The reference miner: an axon answering the three synapses with the real engines.

``runner.run_miner`` is the whole life of the neuron; ``service.MinerService`` holds the blacklist,
priority and forward functions; ``server.MinerAxon`` the axon with its body limit.
"""

from subnet_proxy.miner.admission import AdmissionPolicy, MetagraphView, caller_priority, refusal
from subnet_proxy.miner.runner import MinerStartError, run_miner
from subnet_proxy.miner.server import AxonNotReady, MinerAxon
from subnet_proxy.miner.service import MinerLimits, MinerService

__all__ = [
    "AdmissionPolicy",
    "AxonNotReady",
    "MetagraphView",
    "MinerAxon",
    "MinerLimits",
    "MinerService",
    "MinerStartError",
    "caller_priority",
    "refusal",
    "run_miner",
]
