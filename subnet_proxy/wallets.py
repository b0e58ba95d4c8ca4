"""Wallets for the neurons: operator wallets as they are, local-run wallets made on demand.

Under ``--mock`` a neuron's wallet lives under the data dir and is created, unencrypted, the first
time it is asked for: a local subnet needs no key ceremony and nothing touches ``~/.bittensor``.
On a real network the operator's wallet must already exist; a missing key is a clear error at
start, never a prompt for a password in a headless process.
"""

from __future__ import annotations

import os
from pathlib import Path

from bittensor_wallet import Wallet

from subnet_proxy.config import Settings


class WalletError(ValueError):
    """The wallet the settings name cannot be used; the message says which file is missing."""


def local_wallet_dir(data_dir: Path) -> Path:
    return data_dir / "wallets"


def local_wallet(data_dir: Path, name: str, hotkey: str = "default") -> Wallet:
    """A password-less wallet under ``DATA_DIR/wallets``, created if it does not exist yet."""
    wallet = Wallet(name=name, hotkey=hotkey, path=str(local_wallet_dir(data_dir)))
    wallet.create_if_non_existent(coldkey_use_password=False, hotkey_use_password=False, suppress=True)
    return wallet


def open_wallet(settings: Settings) -> Wallet:
    """The wallet a neuron runs as: a local one under ``--mock``, else the operator's existing one."""
    if settings.mock.enabled:
        return local_wallet(settings.data_dir, settings.wallet.name, settings.wallet.hotkey)
    path = os.path.expanduser(settings.wallet.path)
    wallet = Wallet(name=settings.wallet.name, hotkey=settings.wallet.hotkey, path=path)
    for label, key_file in (("hotkey", wallet.hotkey_file), ("coldkey public key", wallet.coldkeypub_file)):
        if not key_file.exists_on_device():
            raise WalletError(f"wallet {settings.wallet.name!r}: {label} file {key_file.path} does not exist "
                              f"(check --wallet.name, --wallet.hotkey and --wallet.path)")
    return wallet
