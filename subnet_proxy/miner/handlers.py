"""Attach the miner's functions to a bittensor axon with the exact signatures bittensor 10.5 demands.

``Axon.attach`` compares signatures strictly: one parameter named ``synapse`` annotated with the
synapse class, the blacklist returning ``typing.Tuple[bool, str]`` (the builtin ``tuple`` is
refused) and the priority ``float``. One service method serves every synapse kind, so each is
wrapped per kind with an explicit ``__signature__`` built from real classes (no postponed
annotations in this module, on purpose).
"""

import inspect
import typing
from collections.abc import Callable

import bittensor as bt

from protocol import SummarizationSynapse, TranscriptionSynapse, TTSSynapse
from subnet_proxy.miner.service import MinerService


def _typed(fn: Callable[..., typing.Any], synapse_cls: type, returns: typing.Any) -> Callable[..., typing.Any]:
    """``fn`` as a function of one ``synapse: synapse_cls`` parameter returning ``returns``."""

    def wrapper(synapse):  # typed through __signature__ below
        return fn(synapse)

    parameter = inspect.Parameter("synapse", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=synapse_cls)
    wrapper.__signature__ = inspect.Signature([parameter], return_annotation=returns)  # type: ignore[attr-defined]
    wrapper.__name__ = f"{getattr(fn, '__name__', 'handler')}_{synapse_cls.__name__}"
    return wrapper


def attach_service(axon: bt.Axon, service: MinerService) -> None:
    """Serve the three synapses on ``axon`` through ``service``."""
    kinds: tuple[tuple[type, Callable[..., typing.Any]], ...] = (
        (TranscriptionSynapse, service.transcribe),
        (TTSSynapse, service.synthesize),
        (SummarizationSynapse, service.summarize),
    )
    for synapse_cls, forward in kinds:
        axon.attach(
            forward_fn=_typed(forward, synapse_cls, synapse_cls),
            blacklist_fn=_typed(service.blacklist, synapse_cls, typing.Tuple[bool, str]),
            priority_fn=_typed(service.priority, synapse_cls, float),
        )
