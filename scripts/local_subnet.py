#!/usr/bin/env python
"""The local subnet (--mock chain): register a wallet as a miner or validator, and show the subnet.

    python scripts/local_subnet.py register --role miner --wallet.name miner1 --axon.port 8091
    python scripts/local_subnet.py register --role validator --wallet.name validator --stake 10000
    python scripts/local_subnet.py show [--json]

Wallets are made on demand under DATA_DIR/wallets with no password; the chain is the JSON file
under DATA_DIR/local_chain (or --mock.chain_file), the same one the neurons use under --mock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet_proxy.chain import ChainError, MetagraphSnapshot, open_chain  # noqa: E402
from subnet_proxy.chain.local import LocalChain, Registration, WeightsRecord  # noqa: E402
from subnet_proxy.config import Settings, SettingsError, build_parser, settings_from_namespace  # noqa: E402
from subnet_proxy.validator.selection import DEFAULT_VALIDATOR_STAKE, is_validator  # noqa: E402
from subnet_proxy.wallets import local_wallet  # noqa: E402

#: stake a validator is registered with unless --stake says otherwise: enough to count as one.
DEFAULT_VALIDATOR_REGISTRATION_STAKE = 10_000.0
OWN_FLAGS = ("command", "role", "stake", "uid", "json")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = build_parser(__doc__.splitlines()[0], sections=["wallet", "neuron", "axon", "mock"])
    parser.add_argument("command", choices=["register", "show"])
    parser.add_argument("--role", choices=["miner", "validator"], default="miner", help="register as (default: miner)")
    parser.add_argument("--stake", type=float, default=None,
                        help=f"stake (default: miner 0, validator {DEFAULT_VALIDATOR_REGISTRATION_STAKE:g})")
    parser.add_argument("--uid", type=int, default=None, help="take over this uid (replaces its hotkey)")
    parser.add_argument("--json", action="store_true", help="show: print JSON")
    ns = parser.parse_args(argv)
    own = argparse.Namespace(**{k: getattr(ns, k) for k in OWN_FLAGS})
    for key in OWN_FLAGS:
        delattr(ns, key)
    try:
        settings = settings_from_namespace(ns)
    except SettingsError as exc:
        parser.error(str(exc))
    return own, settings.model_copy(update={"mock": settings.mock.model_copy(update={"enabled": True})})


async def register(settings: Settings, args: argparse.Namespace) -> str:
    wallet = local_wallet(settings.data_dir, settings.wallet.name, settings.wallet.hotkey)
    validator = args.role == "validator"
    stake = args.stake if args.stake is not None else (DEFAULT_VALIDATOR_REGISTRATION_STAKE if validator else 0.0)
    if validator and stake < DEFAULT_VALIDATOR_STAKE:  # every validator would query it as a miner
        raise ValueError(f"a validator needs stake >= {DEFAULT_VALIDATOR_STAKE:g} (validators treat a permit with "
                         f"less as a miner); got {stake:g}")
    if validator and settings.axon.external_port is None:
        ip, port = "0.0.0.0", 0  # a validator serves no axon unless asked to announce one
    else:
        ip = settings.axon.external_ip or "127.0.0.1"
        port = settings.axon.external_port or settings.axon.port
    chain = open_chain(settings, wallet)
    if not isinstance(chain, LocalChain):
        raise SystemExit("register works on the local chain only")
    uid = await chain.register(Registration.of_wallet(wallet, ip=ip, port=port, stake=stake,
                                                      validator_permit=validator), uid=args.uid)
    return (f"registered {settings.wallet.name}/{settings.wallet.hotkey} ({wallet.hotkey.ss58_address}) as "
            f"{args.role} uid {uid} on netuid {settings.netuid}, axon {ip}:{port}, stake {stake:g}")


def latest_weights(history: list[WeightsRecord]) -> dict[str, WeightsRecord]:
    latest: dict[str, WeightsRecord] = {}
    for record in history:
        latest[record.hotkey] = record
    return latest


def describe(snapshot: MetagraphSnapshot, history: list[WeightsRecord], path: Path) -> dict[str, Any]:
    return {
        "chain_file": str(path), "netuid": snapshot.netuid, "block": snapshot.block,
        "neurons": [{"uid": n.uid, "role": "validator" if is_validator(n) else "miner", "hotkey": n.hotkey,
                     "coldkey": n.coldkey, "stake": n.stake, "axon": f"{n.ip}:{n.port}", "serving": n.is_serving,
                     "validator_permit": n.validator_permit, "last_update": n.last_update} for n in snapshot.neurons],
        "latest_weights": [{"validator_uid": r.uid, "hotkey": r.hotkey, "block": r.block, "version_key": r.version_key,
                            "weights": {str(u): round(w, 6) for u, w in zip(r.uids, r.weights, strict=True)}}
                           for r in latest_weights(history).values()],
    }


def render(info: dict[str, Any]) -> str:
    lines = [f"local subnet netuid {info['netuid']} at block {info['block']}  ({info['chain_file']})",
             f"validators: stake >= {DEFAULT_VALIDATOR_STAKE:g} with a permit", ""]
    lines.append(f"{'uid':>4}  {'role':<9} {'hotkey':<48} {'stake':>10}  {'axon':<21} {'last_update':>11}")
    for n in info["neurons"]:
        lines.append(f"{n['uid']:>4}  {n['role']:<9} {n['hotkey']:<48} {n['stake']:>10g}  {n['axon']:<21} "
                     f"{n['last_update']:>11}")
    if not info["neurons"]:
        lines.append("  (no neurons registered)")
    lines.append("")
    if not info["latest_weights"]:
        lines.append("no weights set yet")
    for record in info["latest_weights"]:
        shown = ", ".join(f"{uid}: {w:.4f}" for uid, w in record["weights"].items() if w > 0) or "(all zero)"
        lines.append(f"weights of uid {record['validator_uid']} at block {record['block']} "
                     f"(version {record['version_key']}): {shown}")
    return "\n".join(lines)


async def show(settings: Settings, as_json: bool) -> str:
    chain = open_chain(settings, None)
    if not isinstance(chain, LocalChain):
        raise SystemExit("show works on the local chain only")
    info = describe(await chain.snapshot(), await chain.weights_history(), chain.path)
    return json.dumps(info, indent=2) if as_json else render(info)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    try:
        out = asyncio.run(register(settings, args) if args.command == "register" else show(settings, args.json))
    except (ChainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
