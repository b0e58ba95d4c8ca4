"""The one table of task kinds, which every layer iterates: no other code branches on the kind.

In the spirit of SN1's ``task_registry``: a kind is one module (``KindSpec``), and adding one is
registering it. The validator asks this table which synapse to send, how long to wait, how to check
an answer, how to build a synthetic challenge and how to score; the side-server builds its submit
routes, answer intake and result rendering from it; the CLI its ``submit`` verbs.

The table is the module's ``REGISTRY``: the three built-in kinds are in it from import on. It is
mutable only through ``register``, meant for start-up (a deployment's extra kind, a test's toy kind)
before the server or the validator is built from it; ``register`` returns the undo, so a test's kind
never outlives the test.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from subnet_proxy.kinds import summarization, transcription, tts
from subnet_proxy.kinds.base import KindSpec
from subnet_proxy.tasks import KIND_PATTERN, Task

#: no task waits longer than this for its miners, however large.
MAX_TIMEOUT_S = 600.0


class UnknownKind(KeyError, ValueError):
    """No kind of that name is registered (a KeyError to the Mapping protocol, a ValueError to callers)."""

    def __str__(self) -> str:
        return str(self.args[0])


class KindRegistry(Mapping[str, KindSpec[Any]]):
    """Kind name -> ``KindSpec``, in registration order."""

    def __init__(self, specs: tuple[KindSpec[Any], ...] = ()) -> None:
        self._specs: dict[str, KindSpec[Any]] = {}
        for spec in specs:
            self.register(spec)

    def __getitem__(self, kind: str) -> KindSpec[Any]:
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownKind(f"no task kind {kind!r} is registered") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def register(self, spec: KindSpec[Any]) -> Callable[[], None]:
        """Add a kind; returns the function that removes it again. A name taken, or one that is not a
        lowercase word (it names a URL path and a stored column), is a ValueError."""
        if not re.match(KIND_PATTERN, spec.kind):
            raise ValueError(f"kind name {spec.kind!r} does not match {KIND_PATTERN}")
        if spec.kind in self._specs:
            raise ValueError(f"task kind {spec.kind!r} is already registered")
        self._specs[spec.kind] = spec

        def unregister() -> None:
            if self._specs.get(spec.kind) is spec:
                del self._specs[spec.kind]

        return unregister


REGISTRY = KindRegistry((transcription.SPEC, tts.SPEC, summarization.SPEC))


def register(spec: KindSpec[Any]) -> Callable[[], None]:
    """Register a kind in ``REGISTRY``; returns its undo."""
    return REGISTRY.register(spec)


def task_spec(kind: str) -> KindSpec[Any]:
    """The kind's spec; UnknownKind (a ValueError) when none is registered under that name."""
    return REGISTRY[kind]


def submit_path(kind: str) -> str:
    """Where clients submit tasks of ``kind``."""
    return f"/api/v1/{kind}"


def task_timeout(task: Task, base_s: float) -> float:
    """The dendrite timeout for this task: the base (``--neuron.timeout``) plus its size allowance."""
    return min(base_s + float(task_spec(task.kind).extra_timeout_s(task.input)), MAX_TIMEOUT_S)


def pick_challenge_kind(rng: random.Random) -> str:
    """A kind for the next synthetic challenge, drawn by the kinds' weights (a kind of weight 0 never is)."""
    kinds = [kind for kind, spec in REGISTRY.items() if spec.challenge_weight > 0]
    return rng.choices(kinds, weights=[REGISTRY[k].challenge_weight for k in kinds])[0]
