"""The operator's install: a built wheel in a fresh venv (not editable), run from outside the checkout.

The wheel and its dependencies are installed with ``--no-index`` from a wheel directory this test
fills with ``pip wheel`` (``SUBNET_PROXY_WHEELHOUSE``, default ``.cache/wheelhouse``; kept between
runs, so only the first run downloads): the install needs nothing but what the wheel declares.
A base install prints ``--help`` and a one-line error naming the extra, and the commands of the
systemd units and the pm2 file parse their flags against it (``systemd-analyze verify`` checks the
units); ``[validator]`` then runs the local subnet (one reference miner): one task of each kind
completes and the validator sets weights on the local chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jiwer
import pytest

from protocol import __spec_version__, decode_audio
from subnet_proxy.chain.local import LocalChain, default_chain_file
from tests.conftest import free_port
from tests.e2e.conftest import API_KEY, Client

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("SUBNET_PROXY_WHEELHOUSE", ROOT / ".cache" / "wheelhouse"))
INSTALL_TIMEOUT_S = 900
#: what setup.py packages (and reads): the wheel is built from a copy of these alone.
PACKAGED = ("setup.py", "pyproject.toml", "README.md", "LICENSE", "protocol", "subnet_proxy")
SOURCE = ("The river rose overnight after three days of heavy rain. Farmers moved their herds to higher ground "
          "before dawn. The village council opened the school gym as a shelter for families from the low streets.")
SPOKEN = "The weather station reported light rain in the morning and a clear sky by the evening."


@dataclass
class Install:
    venv: Path
    wheel: Path
    outside: Path  # an empty working directory: nothing of the checkout is importable from it

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return env | {"PATH": f"{self.venv / 'bin'}:{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
                      "WANDB_MODE": "offline"}

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=self.outside, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def pip_install(self, requirement: str) -> None:
        done = self.run(str(self.venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
                        str(WHEELHOUSE), requirement, timeout=INSTALL_TIMEOUT_S)
        assert done.returncode == 0, done.stderr[-3000:]


def _check(argv: list[str], **kwargs: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Install:
    work = tmp_path_factory.mktemp("wheel")
    # built from a copy of what the wheel is made of: no stale build/ or egg-info of the checkout gets in
    source = work / "src"
    source.mkdir()
    for name in PACKAGED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(source)])
    (wheel,) = (work / "dist").glob("subnet_proxy-*.whl")
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    # wheels, not downloads: a dependency published only as an sdist (rouge-score) is built once, here
    _check([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELHOUSE), f"{wheel}[validator]"])
    _check([sys.executable, "-m", "venv", str(work / "venv")])
    (work / "outside").mkdir()
    install = Install(venv=work / "venv", wheel=wheel, outside=work / "outside")
    install.pip_install(str(wheel))
    return install


@pytest.fixture(scope="module")
def full(base: Install) -> Install:
    base.pip_install(f"{base.wheel}[validator]")
    return base


def test_a_base_install_prints_help_and_names_the_missing_extra(base: Install) -> None:
    where = base.run("python", "-c", "import subnet_proxy; print(subnet_proxy.__file__)")
    assert where.stdout.startswith(str(base.venv)), where  # the wheel, not the checkout
    for command in ("subnet-proxy-validator", "subnet-proxy-miner"):
        shown = base.run(command, "--help")
        assert shown.returncode == 0 and "--neuron.data_dir" in shown.stdout, shown.stderr[-2000:]
    for command, extra in (("subnet-proxy-validator", "validator"), ("subnet-proxy-miner", "miner")):
        refused = base.run(command, "--mock", "--neuron.data_dir", str(base.outside / "data"))
        lines = (refused.stdout + refused.stderr).strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, lines
        assert f"pip install 'subnet-proxy[{extra}]'" in lines[0] and "Traceback" not in lines[0]
    module = base.run("python", "-m", "subnet_proxy.validator", "--help")
    assert module.returncode == 0, module.stderr[-2000:]


UNIT_VENV = "/opt/subnet-proxy/venv"


def _exec_start(unit: Path) -> list[str]:
    text = unit.read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _flags_parse(install: Install, argv: list[str]) -> None:
    """On a base install a neuron parses every flag (a bad one exits 2), then stops at the missing extra."""
    done = install.run(*argv)
    assert done.returncode == 1 and "pip install 'subnet-proxy[" in done.stderr, (argv, done.stderr[-2000:])


def test_the_systemd_units_and_the_pm2_apps_run_the_installed_commands(base: Install, tmp_path: Path) -> None:
    data = str(base.outside / "deploy-data")
    for name in ("subnet-proxy-validator", "subnet-proxy-miner"):
        unit = ROOT / "deploy" / "systemd" / f"{name}.service"
        argv = _exec_start(unit)
        assert argv[0] == f"{UNIT_VENV}/bin/{name}"
        flags = [a.replace("/var/lib/subnet-proxy", data) for a in argv[1:]]
        _flags_parse(base, [str(base.venv / "bin" / name), *flags])
        local = tmp_path / unit.name  # systemd's own check, the unit pointed at this install
        local.write_text(unit.read_text().replace(UNIT_VENV, str(base.venv)))
        verified = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0 and verified.stderr == "", verified.stderr

    shown = subprocess.run(["node", "-e", "process.stdout.write(JSON.stringify(require(process.argv[1]).apps))",
                            str(ROOT / "deploy" / "pm2" / "ecosystem.config.js")], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "SUBNET_PROXY_VENV": str(base.venv),
                                            "SUBNET_PROXY_DATA_DIR": data})
    apps = json.loads(shown.stdout)
    assert [app["name"] for app in apps] == ["subnet-proxy-validator", "subnet-proxy-miner"]
    for app in apps:
        assert app["autorestart"] and {1, 2} <= set(app["stop_exit_codes"]) and app["interpreter"] == "none"
        _flags_parse(base, [app["script"], *app["args"]])


@pytest.fixture
def local_subnet(full: Install) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    log = open(full.outside / "validator.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        ["subnet-proxy-validator", "--mock", "--mock.miners", "1", "--neuron.data_dir", str(full.outside / "data"),
         "--proxy.host", "127.0.0.1", "--proxy.port", str(port), "--proxy.api_key", API_KEY, "--wandb.off",
         "--mock.block_time_s", "1", "--neuron.synthetic_rate", "0", "--neuron.epoch_length", "3"],
        cwd=full.outside, env=full.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_validator_extra_runs_the_local_subnet_from_outside_the_checkout(
        full: Install, local_subnet: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = local_subnet
    async with aiohttp.ClientSession() as session:
        client = Client(session, url)
        try:
            await client.wait_ready(proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError((full.outside / "validator.log").read_text(errors="replace")[-3000:]) from exc
        summary_id = await client.submit("summarization", text=SOURCE, max_words=40)
        tts_id = await client.submit("tts", text=SPOKEN)
        summary = await client.wait_status(summary_id, "approved")
        assert "river" in summary["result"]["text"].lower()
        await client.wait_status(tts_id, "approved")
        audio = await client.audio_result(tts_id)
        assert 2.0 < decode_audio(audio).duration_s < 15.0
        transcript = await client.wait_status(await client.submit_audio(audio), "approved")
        heard = transcript["result"]["text"].lower().replace(",", "").rstrip(".")
        assert jiwer.wer(SPOKEN.lower().rstrip("."), heard) < 0.3
    chain = LocalChain(default_chain_file(full.outside / "data", 1), netuid=1)
    deadline = time.monotonic() + 90
    while not chain.weights_history_sync() and time.monotonic() < deadline:  # an epoch is 3 one-second blocks
        await asyncio.sleep(1)
    (record, *_) = chain.weights_history_sync()
    assert record.version_key == __spec_version__ and record.uids, record
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
