"""Wallets: made on demand under the data dir for local runs; a clear error for a missing operator key."""

from __future__ import annotations

from pathlib import Path

import pytest

from subnet_proxy.config import Settings
from subnet_proxy.wallets import WalletError, local_wallet, open_wallet


def test_local_wallets_are_created_once_without_password(tmp_path: Path) -> None:
    first = local_wallet(tmp_path, "miner1")
    again = local_wallet(tmp_path, "miner1")
    assert first.hotkey.ss58_address == again.hotkey.ss58_address
    assert (tmp_path / "wallets" / "miner1" / "hotkeys" / "default").exists()
    assert not again.coldkey_file.is_encrypted()
    assert local_wallet(tmp_path, "miner2").hotkey.ss58_address != first.hotkey.ss58_address


def test_open_wallet_under_mock_uses_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.model_validate({"mock": {"enabled": True}, "neuron": {"data_dir": str(tmp_path)},
                                        "wallet": {"name": "val", "hotkey": "hk"}})
    wallet = open_wallet(settings)
    assert wallet.hotkey.ss58_address == local_wallet(tmp_path, "val", "hk").hotkey.ss58_address


def test_open_wallet_for_a_real_network_never_creates_keys(tmp_path: Path) -> None:
    settings = Settings.model_validate({"wallet": {"name": "nope", "path": str(tmp_path / "w")}})
    with pytest.raises(WalletError, match="hotkey file .* does not exist"):
        open_wallet(settings)
    assert not (tmp_path / "w").exists()
    local_wallet(tmp_path / "x", "nope")  # an existing wallet under that path opens
    ok = Settings.model_validate({"wallet": {"name": "nope", "path": str(tmp_path / "x" / "wallets")}})
    assert open_wallet(ok).hotkey.ss58_address
