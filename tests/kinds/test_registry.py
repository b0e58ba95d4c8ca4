"""The task-kind table: complete, consistent with the protocol, timeouts that grow with the work."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from protocol import AudioSynapse
from subnet_proxy.kinds import MAX_TIMEOUT_S, REGISTRY, pick_challenge_kind, register, task_spec, task_timeout
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import make_task


def test_every_task_kind_has_exactly_one_row() -> None:
    assert set(REGISTRY) == set(TaskKind)
    for kind, spec in REGISTRY.items():
        assert spec.kind is kind and task_spec(kind) is spec and task_spec(kind.value) is spec  # type: ignore[arg-type]
        assert issubclass(spec.synapse, AudioSynapse)
        assert spec.challenge_weight > 0
    with pytest.raises(ValueError):
        task_spec("translation")  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "small", "large"), [
    (TaskKind.TRANSCRIPTION, {"audio_seconds": 5.0}, {"audio_seconds": 300.0}),
    (TaskKind.TTS, {"text": "Hi."}, {"text": "word " * 400}),
    (TaskKind.SUMMARIZATION, {"text": "short text"}, {"text": "word " * 20_000}),
])
def test_timeout_grows_with_the_task_and_is_capped(kind: TaskKind, small: dict, large: dict) -> None:
    base = 12.0
    assert base <= task_timeout(make_task(kind, **small), base) < task_timeout(make_task(kind, **large), base)
    assert task_timeout(make_task(kind, **large), 599.0) == MAX_TIMEOUT_S


def test_challenge_kinds_follow_their_weights() -> None:
    rng = random.Random(3)
    counts = Counter(pick_challenge_kind(rng) for _ in range(3_000))
    total = sum(spec.challenge_weight for spec in REGISTRY.values())
    for kind, spec in REGISTRY.items():
        assert counts[kind] / 3_000 == pytest.approx(spec.challenge_weight / total, abs=0.04)


def test_the_public_surface_is_what_it_claims() -> None:
    import subnet_proxy.rewards as rewards

    assert sorted(rewards.__all__) == sorted(set(rewards.__all__))
    for name in rewards.__all__:
        assert getattr(rewards, name) is not None, name
    import subnet_proxy.kinds as kinds

    assert sorted(kinds.__all__) == sorted(set(kinds.__all__))
    for name in kinds.__all__:
        assert getattr(kinds, name) is not None, name
    assert kinds.score_task.__module__ == "subnet_proxy.kinds.scoring"


def test_a_kind_named_like_an_endpoint_stops_the_server_from_starting() -> None:
    """``/api/v1/health`` already answers GET: a kind named ``health`` would add a POST beside it."""
    from subnet_proxy.server.app import endpoints

    undo = register(dataclasses.replace(task_spec(TaskKind.TTS), kind="health", cli=None))
    try:
        with pytest.raises(ValueError, match="/api/v1/health"):
            endpoints()
    finally:
        undo()
    assert "/api/v1/tts" in {e.path for e in endpoints()}
