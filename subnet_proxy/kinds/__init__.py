"""Task kinds: one module per kind holding everything kind-specific, and the one registry of them.

``REGISTRY`` maps a kind's name to its ``KindSpec`` (``base.py``); the built-in kinds are
``transcription``, ``tts`` and ``summarization``. ``wire.py`` turns tasks into synapses and answers
(answered synapses or delivered ``MinerAnswer``\\ s, the same checks) into stored responses;
``scoring.score_task`` judges them with the kind's reward; ``challenges.py`` is the corpus and
augmentation the kinds' synthetic challenges share. Imports go downward: kinds use protocol, tasks,
blobs, engines, rewards and the API models, never the server or the validator.
"""

from subnet_proxy.kinds.base import (
    AnswerRefused,
    AudioProbe,
    AudioUpload,
    BadTaskInput,
    CliVerb,
    JsonBody,
    KindSpec,
    Output,
    RawAnswer,
    ResultMedia,
    Submission,
    Submitter,
)
from subnet_proxy.kinds.registry import (
    MAX_TIMEOUT_S,
    REGISTRY,
    KindRegistry,
    UnknownKind,
    pick_challenge_kind,
    register,
    submit_path,
    task_spec,
    task_timeout,
)
from subnet_proxy.kinds.scoring import score_task

__all__ = [
    "MAX_TIMEOUT_S",
    "REGISTRY",
    "AnswerRefused",
    "AudioProbe",
    "AudioUpload",
    "BadTaskInput",
    "CliVerb",
    "JsonBody",
    "KindRegistry",
    "KindSpec",
    "Output",
    "RawAnswer",
    "ResultMedia",
    "Submission",
    "Submitter",
    "UnknownKind",
    "pick_challenge_kind",
    "register",
    "score_task",
    "submit_path",
    "task_spec",
    "task_timeout",
]
