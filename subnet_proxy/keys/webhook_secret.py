"""The validator's own webhook secret: what signs the events of keys that have none of their own.

``--proxy.webhook_secret`` when set; else one made at the first start and kept in
``DATA_DIR/webhook_secret`` (mode 0600, written whole or not at all), so it survives restarts and
receivers configured with it keep verifying. Several side-servers sharing one store each make their
own unless the flag gives them one: set it there (or give every key its own secret).
"""

from __future__ import annotations

from subnet_proxy.atomic_file import write_bytes_atomic
from subnet_proxy.config import Settings
from subnet_proxy.keys.base import new_webhook_secret

FILE_NAME = "webhook_secret"


def default_webhook_secret(settings: Settings) -> str:
    """The configured secret, else the kept one (made now when there is none yet)."""
    if settings.proxy.webhook_secret:
        return settings.proxy.webhook_secret
    path = settings.data_dir / FILE_NAME
    if path.exists():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    secret = new_webhook_secret()
    write_bytes_atomic(path, secret.encode("utf-8"))
    return secret
