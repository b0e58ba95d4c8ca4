"""scripts/local_subnet.py: register miners and a validator into the local chain, show the subnet."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from subnet_proxy.chain.local import LocalChain, default_chain_file
from subnet_proxy.wallets import local_wallet
from tests.conftest import load_script


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("local_subnet")


def run(script: ModuleType, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = script.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_and_show(script: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = ["--neuron.data_dir", str(tmp_path)]
    code, out, _ = run(script, capsys, "register", "--role", "validator", "--wallet.name", "val", *d)
    assert code == 0 and "as validator uid 0" in out and "stake 10000" in out
    code, out, _ = run(script, capsys, "register", "--wallet.name", "m1", "--axon.port", "9101", *d)
    assert code == 0 and "as miner uid 1" in out and "127.0.0.1:9101" in out
    run(script, capsys, "register", "--wallet.name", "m2", "--axon.port", "9102", *d)

    # the validator sets weights through the same file, as the neuron would
    val = local_wallet(tmp_path, "val")
    chain = LocalChain(default_chain_file(tmp_path, 1), netuid=1, hotkey=val.hotkey.ss58_address)
    assert chain.set_weights_sync([1, 2], [3.0, 1.0], version_key=1000).success

    code, out, _ = run(script, capsys, "show", *d)
    assert code == 0
    assert val.hotkey.ss58_address in out and "validator" in out and "127.0.0.1:9102" in out
    assert "weights of uid 0 at block 0 (version 1000): 1: 0.7500, 2: 0.2500" in out

    code, out, _ = run(script, capsys, "show", "--json", *d)
    info = json.loads(out)
    assert [n["role"] for n in info["neurons"]] == ["validator", "miner", "miner"]
    assert info["neurons"][0]["axon"] == "0.0.0.0:0" and not info["neurons"][0]["serving"]
    assert info["latest_weights"][0]["weights"] == {"1": 0.75, "2": 0.25}


def test_replacing_a_uid_and_errors(script: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = ["--neuron.data_dir", str(tmp_path)]
    run(script, capsys, "register", "--wallet.name", "m1", *d)
    code, out, _ = run(script, capsys, "register", "--wallet.name", "m9", "--uid", "0", *d)
    assert code == 0 and "uid 0" in out
    assert local_wallet(tmp_path, "m9").hotkey.ss58_address in run(script, capsys, "show", *d)[1]
    code, _, err = run(script, capsys, "register", "--wallet.name", "x", "--uid", "5", *d)
    assert code == 1 and "uid 5 is not registered" in err
    code, _, err = run(script, capsys, "register", "--wallet.name", "x", "--stake", "-1", *d)
    assert code == 1 and "stake -1" in err
    code, _, err = run(script, capsys, "register", "--wallet.name", "x", "--role", "validator", "--stake", "100", *d)
    assert code == 1 and "stake >= 4096" in err and "got 100" in err
    with pytest.raises(SystemExit):
        script.main(["register", "--role", "king", *d])
