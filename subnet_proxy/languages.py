"""The languages this validator can score: one list, checked at the API's door and by scoring.

The validator judges transcriptions with its own ASR and TTS answers by listening back, both with
English-only models by default (Whisper tiny.en; the shipped Piper voice is English). An honest
French transcription would be scored against an English reading of French speech and earn about
nothing, so such a task is refused when it is submitted (400 ``unsupported_language``) rather than
taken and mis-scored. A region subtag is fine: ``en-GB`` is English.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en",)
#: the error code a request in another language gets.
UNSUPPORTED_LANGUAGE = "unsupported_language"


def language_supported(code: str | None) -> bool:
    """None (detect) is accepted: the miners and the validator then hear whatever is spoken."""
    return code is None or code.split("-")[0].lower() in SUPPORTED_LANGUAGES


def unsupported_message(code: str) -> str:
    return f"language {code!r} cannot be scored by this validator; supported: {', '.join(SUPPORTED_LANGUAGES)}"


def check_language(code: str | None) -> str | None:
    """A pydantic validator: the code unchanged, or a ``unsupported_language`` validation error."""
    if not language_supported(code):
        raise PydanticCustomError(UNSUPPORTED_LANGUAGE, unsupported_message(str(code)))
    return code
