"""Manage client API keys: create (the key is printed once; limits and daily quotas), list, revoke.

Works on the key store directly (the data dir of a validator on this machine) or, with ``--url``,
through a running server's admin endpoints with an admin key::

    python scripts/keys.py --neuron.data_dir ~/.subnet-proxy create acme --rate 5 --burst 10
    python scripts/keys.py create trial --daily-tasks 100 --daily-audio-s 600
    python scripts/keys.py list
    python scripts/keys.py --url http://127.0.0.1:8000 --admin-key ADMIN revoke k_1a2b3c4d5e6f
    python scripts/keys.py webhook-secret k_1a2b3c4d5e6f            # a new secret for its webhooks, printed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet_proxy.api.schemas import KeyCreate, WebhookSecretSet, WebhookSecretView  # noqa: E402
from subnet_proxy.client import ProxyClient, ProxyError  # noqa: E402
from subnet_proxy.config import NeuronSettings, Settings  # noqa: E402
from subnet_proxy.keys import KeyNotFound, Role, new_webhook_secret, open_key_store  # noqa: E402
from subnet_proxy.server.routes_admin import key_view  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neuron.data_dir", dest="data_dir", default=NeuronSettings().data_dir,
                        help="Data dir holding keys.db (local mode).")
    parser.add_argument("--url", help="Manage keys through this server's admin endpoints instead.")
    parser.add_argument("--admin-key", default=os.environ.get("SUBNET_PROXY_ADMIN_KEY"), help="Admin key (--url).")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="Create a key and print it (shown once).")
    create.add_argument("name")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.CLIENT.value)
    create.add_argument("--rate", type=float, help="Requests per second (default: the server's).")
    create.add_argument("--burst", type=int, help="Token bucket size (default: the server's).")
    create.add_argument("--max-in-flight", type=int, help="Concurrent requests (default: the server's).")
    create.add_argument("--daily-tasks", type=int, help="Quota: tasks a UTC day (default: none).")
    create.add_argument("--daily-audio-s", type=float, help="Quota: seconds of input audio a UTC day.")
    create.add_argument("--daily-chars", type=int, help="Quota: characters of input text a UTC day.")
    create.add_argument("--webhook-secret", help="Signs the key's webhook events (default: the validator's secret).")
    listing = sub.add_parser("list", help="List keys (never the keys themselves).")
    listing.add_argument("--all", action="store_true", help="Include revoked keys.")
    revoke = sub.add_parser("revoke", help="Revoke a key by id.")
    revoke.add_argument("key_id")
    secret = sub.add_parser("webhook-secret", help="Set the key's webhook secret (printed; made when not given).")
    secret.add_argument("key_id")
    secret.add_argument("--secret", help="The secret (16-256 printable characters); default: a new random one.")
    return parser


def quotas(args: argparse.Namespace) -> dict[str, Any]:
    """The daily quotas ``create`` was given (checked as the admin API checks them)."""
    return KeyCreate(name=args.name, daily_tasks=args.daily_tasks, daily_audio_s=args.daily_audio_s,
                     daily_chars=args.daily_chars).model_dump(include={"daily_tasks", "daily_audio_s", "daily_chars"})


async def remote(args: argparse.Namespace) -> Any:
    async with ProxyClient(args.url, api_key=args.admin_key) as client:
        if args.command == "create":
            return (await client.create_key(args.name, role=args.role, rate_per_s=args.rate, burst=args.burst,
                                            max_in_flight=args.max_in_flight, webhook_secret=args.webhook_secret,
                                            **quotas(args))).model_dump(mode="json")
        if args.command == "webhook-secret":
            return (await client.set_webhook_secret(args.key_id, args.secret)).model_dump(mode="json")
        if args.command == "list":
            return (await client.list_keys(include_revoked=args.all)).model_dump(mode="json")
        return (await client.revoke_key(args.key_id)).model_dump(mode="json")


async def local(args: argparse.Namespace) -> Any:
    keys = open_key_store(Settings(neuron=NeuronSettings(data_dir=args.data_dir)))
    try:
        if args.command == "create":
            api_key, plaintext = await keys.create(name=args.name, role=Role(args.role), rate_per_s=args.rate,
                                                   burst=args.burst, max_in_flight=args.max_in_flight,
                                                   webhook_secret=args.webhook_secret, **quotas(args))
            return {**key_view(api_key).model_dump(mode="json"), "key": plaintext}
        if args.command == "webhook-secret":
            secret = WebhookSecretSet(secret=args.secret).secret or new_webhook_secret()
            api_key = await keys.set_webhook_secret(args.key_id, secret)
            return WebhookSecretView(key_id=api_key.key_id, webhook_secret=secret).model_dump(mode="json")
        if args.command == "list":
            return {"keys": [key_view(k).model_dump(mode="json") for k in await keys.list(include_revoked=args.all)]}
        return key_view(await keys.revoke(args.key_id)).model_dump(mode="json")
    finally:
        await keys.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = asyncio.run(remote(args) if args.url else local(args))
    except (ProxyError, KeyNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
