"""scripts/keys.py: create, list and revoke keys in a data dir's key store, and through a server's admin API."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from types import ModuleType

import pytest

from subnet_proxy.keys.sqlite import SqliteKeyStore
from tests.conftest import load_script
from tests.server.conftest import ADMIN_KEY, start_harness, stop_harness


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("keys")


def run(script: ModuleType, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = script.main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_local_create_list_revoke(script: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = ["--neuron.data_dir", str(tmp_path)]
    code, created, _ = run(script, capsys, *data, "create", "acme", "--rate", "5", "--burst", "9")
    assert code == 0 and created["key"].startswith("sp_") and (created["rate_per_s"], created["burst"]) == (5.0, 9)

    async def check() -> bool:
        keys = SqliteKeyStore(tmp_path / "keys.db")
        try:
            return await keys.authenticate(created["key"]) is not None
        finally:
            await keys.close()

    assert asyncio.run(check())
    code, listing, _ = run(script, capsys, *data, "list")
    assert [k["key_id"] for k in listing["keys"]] == [created["key_id"]] and "key" not in listing["keys"][0]
    code, revoked, _ = run(script, capsys, *data, "revoke", created["key_id"])
    assert code == 0 and revoked["revoked_at"]
    assert not asyncio.run(check())
    code, _, err = run(script, capsys, *data, "revoke", "k_unknown")
    assert code == 1 and "not found" in err


def test_remote_through_the_admin_api(script: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    async def start():
        return await start_harness(tmp_path)

    runner = asyncio.Runner()
    harness = runner.run(start())
    try:
        url = str(harness.client.make_url("")).rstrip("/")
        # the script runs its own event loop, so the server's loop runs on a thread meanwhile
        loop_thread = threading.Thread(target=runner.get_loop().run_forever, daemon=True)
        loop_thread.start()
        try:
            code, created, err = run(script, capsys, "--url", url, "--admin-key", ADMIN_KEY, "create", "remote")
            assert code == 0, err
            code, listing, _ = run(script, capsys, "--url", url, "--admin-key", ADMIN_KEY, "list")
            assert created["key_id"] in [k["key_id"] for k in listing["keys"]]
            code, _, err = run(script, capsys, "--url", url, "--admin-key", "wrong", "list")
            assert code == 1 and "invalid_api_key" in err
        finally:
            runner.get_loop().call_soon_threadsafe(runner.get_loop().stop)
            loop_thread.join(5)
    finally:
        runner.run(stop_harness(harness))
        runner.close()


def test_create_with_daily_quotas(script: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = ["--neuron.data_dir", str(tmp_path)]
    code, created, _ = run(script, capsys, *data, "create", "trial", "--daily-tasks", "100", "--daily-audio-s", "600")
    assert code == 0 and (created["daily_tasks"], created["daily_audio_s"], created["daily_chars"]) == (100, 600.0,
                                                                                                         None)
    code, _, err = run(script, capsys, *data, "create", "bad", "--daily-tasks", "0")
    assert code == 1 and "daily_tasks" in err  # checked as the admin API checks it
