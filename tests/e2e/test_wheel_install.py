"""The operator's install: a built wheel in a fresh venv (not editable), run from outside the checkout.

The README's "Install as an operator" commands are the source (``operator_section``): its first
block runs as written in a copy of the checkout (the venv it makes, the ``pip install`` lines), its
local trial (a validator, then a separately started miner) runs as written from a directory outside
the checkout until the miner has answered a task, and every other ``subnet-proxy-validator`` /
``subnet-proxy-miner`` command of the README (the network ones with their placeholders ``N``, ``W``,
``H``, ``NET`` filled in) must parse its flags. Only the trial's ports change (free ones, not
8000/8091, which another process may hold); its processes run unbuffered, so the test sees the banner
an operator waits for. pip runs offline through its environment (``PIP_NO_INDEX``,
``PIP_FIND_LINKS``) on a wheel directory this test fills with ``pip wheel``
(``SUBNET_PROXY_WHEELHOUSE``, default ``.cache/wheelhouse``; kept between runs, so only the first run
downloads): the install needs nothing but what the wheel declares.

A base install prints ``--help`` and a one-line error naming the extra, and the commands of the
systemd units and the pm2 file parse their flags against it (``systemd-analyze verify`` checks the
units); ``[validator]`` then runs the local subnet (one reference miner): one task of each kind
completes and the validator sets weights on the local chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import jiwer
import pytest

from protocol import __spec_version__, decode_audio
from subnet_proxy.chain.local import LocalChain, default_chain_file
from tests.conftest import free_port
from tests.e2e.conftest import API_KEY, READY_S, Client
from tests.readme import README, command_lines, fenced_blocks, section

pytestmark = pytest.mark.slow
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("SUBNET_PROXY_WHEELHOUSE", ROOT / ".cache" / "wheelhouse"))
INSTALL_TIMEOUT_S = 900
#: what setup.py packages (and reads): the wheel is built from a copy of these alone.
PACKAGED = ("setup.py", "pyproject.toml", "README.md", "LICENSE", "protocol", "subnet_proxy")
SOURCE = ("The river rose overnight after three days of heavy rain. Farmers moved their herds to higher ground "
          "before dawn. The village council opened the school gym as a shelter for families from the low streets.")
SPOKEN = "The weather station reported light rain in the morning and a clear sky by the evening."

OPERATOR_HEADING = "## Install as an operator"
#: the README's documented stand-ins in its network commands, and what this test fills in.
PLACEHOLDERS = {"N": "1", "W": "operator", "H": "default", "NET": "finney"}
NEURONS = ("subnet-proxy-validator ", "subnet-proxy-miner ")
#: the local trial's fixed ports, given free ones here (the flags as the README writes them).
PROXY_PORT, AXON_PORT = "--proxy.port 8000", "--axon.port 8091"


@dataclass(frozen=True)
class OperatorSection:
    """The README's operator commands, as the README writes them."""

    install: list[str]  # the first block but its network commands: run in the checkout, one shell
    trial: tuple[str, str]  # the local trial: the validator, then the miner


def operator_section() -> OperatorSection:
    """Read the operator section: two code blocks, the install (venv, pip) and the local trial."""
    install, trial = (command_lines(b) for b in fenced_blocks(section(README.read_text(), OPERATOR_HEADING)))
    assert install[0].startswith("python3.11 -m venv .venv && . .venv/bin/activate"), install
    assert 'pip install ".[validator]"' in "\n".join(install) and 'pip install ".[miner]"' in "\n".join(install)
    validator, miner = trial
    assert validator.startswith(f"{NEURONS[0]}--mock ") and PROXY_PORT in validator, validator
    assert miner.startswith(f"{NEURONS[1]}--mock ") and AXON_PORT in miner, miner
    return OperatorSection(install=[c for c in install if not c.startswith(NEURONS)], trial=(validator, miner))


def other_neuron_commands() -> list[str]:
    """Every neuron command of the README but the local trial's (the network ones, the miner's own local
    one), placeholders filled in; "..." ones are fragments, not commands."""
    trial = operator_section().trial
    found = [c for b in fenced_blocks(README.read_text()) for c in command_lines(b)
             if c.startswith(NEURONS) and c not in trial and "..." not in c]
    return [re.sub(r"(?<= )(N|W|H|NET)(?= |$)", lambda m: PLACEHOLDERS[m[1]], c) for c in found]


def flag(command: str, name: str) -> str:
    """The value of ``--name value`` in a command line."""
    argv = shlex.split(command)
    return argv[argv.index(name) + 1]


@dataclass
class Install:
    checkout: Path  # a copy of what the wheel is made of: the README's install commands run in it
    wheel: Path
    outside: Path  # an empty working directory: nothing of the checkout is importable from it

    @property
    def venv(self) -> Path:
        return self.checkout / ".venv"  # where the README's first line makes it

    def env(self, *, activated: bool = True) -> dict[str, str]:
        """An operator's shell: no venv of the test runner's on PATH (``activated``: the README's one),
        pip offline on the wheelhouse and refusing to install outside a venv (a README line that failed
        to make or activate one must not install into the machine's Python)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        path = [d for d in env.get("PATH", "").split(os.pathsep) if d and Path(d) != Path(sys.prefix) / "bin"]
        if activated:
            path.insert(0, str(self.venv / "bin"))
            env["VIRTUAL_ENV"] = str(self.venv)
        return env | {"PATH": os.pathsep.join(path), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE),
                      "PIP_REQUIRE_VIRTUALENV": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=self.outside, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def sh(self, script: str, *, cwd: Path, activated: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run lines as an operator types them, in one bash that stops at the first failing line."""
        return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=self.env(activated=activated),
                              capture_output=True, text=True, timeout=timeout)

    def pip_install(self, requirement: str) -> None:
        done = self.run(str(self.venv / "bin" / "pip"), "install", "-q", requirement, timeout=INSTALL_TIMEOUT_S)
        assert done.returncode == 0, done.stderr[-3000:]


def _check(argv: list[str], **kwargs: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The README's venv (its first line, in a fresh copy of the checkout) with the built wheel alone in it."""
    work = tmp_path_factory.mktemp("wheel")
    # a copy of what the wheel is made of: no stale build/ or egg-info of the checkout gets in
    checkout = work / "checkout"
    checkout.mkdir()
    for name in PACKAGED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, checkout / name)
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(checkout)])
    (wheel,) = (work / "dist").glob("subnet_proxy-*.whl")
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    # wheels, not downloads: a dependency published only as an sdist (rouge-score) is built once, here;
    # setuptools and wheel too, which `pip install .` builds the checkout with
    _check([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELHOUSE), f"{wheel}[validator,miner]",
            "setuptools>=68", "wheel"])
    (work / "outside").mkdir()
    install = Install(checkout=checkout, wheel=wheel, outside=work / "outside")
    made = install.sh(operator_section().install[0], cwd=checkout, activated=False)
    assert made.returncode == 0 and install.venv.is_dir(), made.stderr[-3000:]
    install.pip_install(str(wheel))
    return install


@pytest.fixture(scope="module")
def full(base: Install) -> Install:
    """The README's install block run as written, in its checkout: the venv line, then its pip lines."""
    done = base.sh("\n".join(operator_section().install), cwd=base.checkout, activated=False,
                   timeout=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
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


def _flags_parsed(done: subprocess.CompletedProcess[str], command: object) -> None:
    """On a base install a neuron parses every flag (a bad one exits 2), then stops at the missing extra."""
    assert done.returncode == 1 and "pip install 'subnet-proxy[" in done.stderr, (command, done.stderr[-2000:])


def test_the_systemd_units_and_the_pm2_apps_run_the_installed_commands(base: Install, tmp_path: Path) -> None:
    data = str(base.outside / "deploy-data")
    for name in ("subnet-proxy-validator", "subnet-proxy-miner"):
        unit = ROOT / "deploy" / "systemd" / f"{name}.service"
        argv = _exec_start(unit)
        assert argv[0] == f"{UNIT_VENV}/bin/{name}"
        flags = [a.replace("/var/lib/subnet-proxy", data) for a in argv[1:]]
        argv = [str(base.venv / "bin" / name), *flags]
        _flags_parsed(base.run(*argv), argv)
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
        _flags_parsed(base.run(app["script"], *app["args"]), app)


def test_the_readmes_other_neuron_commands_parse_on_the_installed_build(base: Install) -> None:
    commands = other_neuron_commands()
    assert len(commands) >= 4 and all(" N " not in c and not c.endswith(" NET") for c in commands), commands
    for command in commands:
        _flags_parsed(base.sh(command, cwd=base.outside), command)


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
    try:
        await _all_three_kinds_approved(proc, url)
    except (AssertionError, RuntimeError, TimeoutError) as exc:
        raise AssertionError(_log_tails(full.outside)) from exc
    chain = LocalChain(default_chain_file(full.outside / "data", 1), netuid=1)
    deadline = time.monotonic() + 90
    while not chain.weights_history_sync() and time.monotonic() < deadline:  # an epoch is 3 one-second blocks
        await asyncio.sleep(1)
    (record, *_) = chain.weights_history_sync()
    assert record.version_key == __spec_version__ and record.uids, record
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


async def _all_three_kinds_approved(proc: subprocess.Popen[bytes], url: str) -> None:
    """A summary, a reading of SPOKEN, and that reading transcribed back, each approved."""
    async with aiohttp.ClientSession() as session:
        client = Client(session, url)
        await client.wait_ready(proc)
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


def _log_tails(outside: Path) -> str:
    """The ends of the validator's log and its miners' logs: all that a CI run keeps of a failure."""
    logs = [outside / "validator.log", *sorted((outside / "data" / "logs").glob("*.log"))]
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())


#: the README's trial names no --netuid: the default one.
TRIAL_NETUID = 1


def _start(install: Install, command: str, cwd: Path, name: str) -> subprocess.Popen[bytes]:
    """One trial command as its own terminal would run it (unbuffered, so its log shows what it printed)."""
    log = open(cwd / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=install.env() | {"PYTHONUNBUFFERED": "1"},
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc


async def _until(what: str, probe: Callable[[], Awaitable[T | None]], procs: dict[str, subprocess.Popen[bytes]],
                 cwd: Path, timeout: float = READY_S) -> T:
    """Poll ``probe`` until it returns something; a trial process that exits or the timeout fails with the logs."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        dead = {name: proc.returncode for name, proc in procs.items() if proc.poll() is not None}
        if dead or time.monotonic() > deadline:
            logs = {name: (cwd / f"{name}.log").read_text(errors="replace")[-2000:] for name in procs}
            raise AssertionError(f"{what}: exited {dead}" if dead else f"{what}: not after {timeout:.0f} s", logs)
        await asyncio.sleep(0.5)


async def test_the_readmes_local_trial_runs_as_written_and_its_miner_answers(full: Install, tmp_path: Path) -> None:
    validator_line, miner_line = operator_section().trial
    proxy_port, axon_port = free_port(), free_port()
    validator_line = validator_line.replace(PROXY_PORT, f"--proxy.port {proxy_port}")
    miner_line = miner_line.replace(AXON_PORT, f"--axon.port {axon_port}")
    data_dir = tmp_path / flag(validator_line, "--neuron.data_dir")
    assert tmp_path / flag(miner_line, "--neuron.data_dir") == data_dir  # one local chain for both
    chain = LocalChain(default_chain_file(data_dir, TRIAL_NETUID), netuid=TRIAL_NETUID)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    async def banner() -> bool | None:  # printed once the side-server serves and the dev key is seeded
        return "dev API key:" in (tmp_path / "validator.log").read_text(errors="replace") or None

    async def miner_uid() -> int | None:
        if not chain.path.exists():
            return None
        return next((n.uid for n in chain.snapshot_sync().neurons if n.port == axon_port), None)

    try:
        procs["validator"] = _start(full, validator_line, tmp_path, "validator")
        await _until("the validator's banner", banner, procs, tmp_path)
        procs["miner"] = _start(full, miner_line, tmp_path, "miner")  # the README's second terminal
        uid = await _until("the miner's registration", miner_uid, procs, tmp_path)
        async with aiohttp.ClientSession() as session:
            key = (data_dir / "dev_api_key").read_text(encoding="utf-8").strip()
            client = Client(session, f"http://{flag(validator_line, '--proxy.host')}:{proxy_port}", key=key)

            async def known() -> bool | None:  # the validator's resync has the miner
                return uid in await client.miners() or None

            await _until("the miner in the validator's table", known, procs, tmp_path, timeout=60)
            summary = await client.wait_status(await client.submit("summarization", text=SOURCE), "approved")
        assert summary["result"]["uid"] == uid and "river" in summary["result"]["text"].lower(), summary
        for name in ("miner", "validator"):
            procs[name].send_signal(signal.SIGTERM)
            assert procs[name].wait(60) == 0, (tmp_path / f"{name}.log").read_text(errors="replace")[-2000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
