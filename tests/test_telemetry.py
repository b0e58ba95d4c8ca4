"""Telemetry: real wandb in offline mode (rotation, failures injected on purpose) and logging set-up."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
import wandb
from wandb.proto import wandb_internal_pb2 as pb

from subnet_proxy.config import LoggingSettings, Settings
from subnet_proxy.tasks import MinerStat
from subnet_proxy.telemetry import (
    MAX_CONSECUTIVE_ERRORS,
    QUIET_LOGGERS,
    TRACE,
    Telemetry,
    prune_runs,
    public_config,
    setup_logging,
)


@pytest.fixture(autouse=True)
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


def settings(tmp_path: Path, **wandb_settings: Any) -> Settings:
    return Settings.model_validate({"neuron": {"data_dir": str(tmp_path / "data")}, "mock": {"enabled": True},
                                    "wandb": {"max_steps": 100, **wandb_settings}})


def offline_runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "wandb" / "wandb").glob("offline-run-*"))


def read_run(run_dir: Path) -> tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(name, config, history rows, summary) of an offline run, read from its ``.wandb`` record log.

    The file is a 7-byte ``:W&B`` header, then LevelDB-log framed protobuf ``Record``s in 32 KiB
    blocks (each chunk: crc32, length, type FULL/FIRST/MIDDLE/LAST).
    """
    (path,) = run_dir.glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending, block = 7, b"", 32768
    name, config, history, summary = "", {}, [], {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind not in (1, 4):
            continue
        record = pb.Record()
        record.ParseFromString(pending)
        if record.WhichOneof("record_type") == "run":
            name = record.run.display_name
            config = {item.key: json.loads(item.value_json) for item in record.run.config.update}
        elif record.WhichOneof("record_type") == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif record.WhichOneof("record_type") == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.summary.update})
    return name, config, history, summary


async def test_offline_runs_rotate_and_record_what_was_logged(tmp_path: Path) -> None:
    telemetry = Telemetry(settings(tmp_path), hotkey="5FvalidatorHotkey")
    assert telemetry.mode == "offline"  # automatic under --mock
    await telemetry.start()
    for i in range(230):
        telemetry.log_task(task_id=f"t{i}", kind="transcription", rewards={1: 0.9, 2: 0.1 * (i % 5)},
                           latencies={1: 0.2, 2: 0.4})
    telemetry.log_scores([MinerStat(uid=1, hotkey="a", ema_score=0.8, latency_s=0.2, last_weight=0.7)])
    await telemetry.close()
    assert telemetry.errors == 0 and telemetry.dropped == 0
    assert telemetry.run_index == 3  # 231 steps at 100 per run
    runs = sorted((read_run(r) for r in offline_runs(tmp_path)), key=lambda run: run[0])
    assert [name for name, _, _, _ in runs] == [f"{telemetry.group}-{i}" for i in range(3)]
    assert [len(history) for _, _, history, _ in runs] == [100, 100, 31]
    first = runs[0][2][0]
    assert first["task/id"] == "t0" and first["task/kind"] == "transcription"
    # per-uid values are summarised in the history and kept, latest only, in the run's summary
    assert first["task/best_reward"] == pytest.approx(0.9) and first["task/answers"] == 2
    assert not any("uid_" in key for _, _, history, _ in runs for row in history for key in row)
    summary = runs[0][3]
    assert summary["reward/transcription/uid_1"] == pytest.approx(0.9)
    assert summary["latency/transcription/uid_2"] == pytest.approx(0.4)
    assert runs[1][2][-1]["task/id"] == "t199"
    last = runs[2][2][-1]
    assert last["scores/max"] == pytest.approx(0.8) and last["scores/nonzero"] == 1
    assert runs[2][3]["score/uid_1"] == pytest.approx(0.8) and runs[2][3]["weight/uid_1"] == pytest.approx(0.7)
    config = runs[0][1]
    assert config["hotkey"] == "5FvalidatorHotkey" and config["run_index"] == 0
    assert config["neuron"]["moving_average_alpha"] == 0.1


async def test_local_run_folders_are_pruned_to_their_bound(tmp_path: Path) -> None:
    telemetry = Telemetry(settings(tmp_path, max_local_mb=1), hotkey="5FvalidatorHotkey")
    folder = tmp_path / "data" / "wandb" / "wandb"
    for i in range(4):  # earlier sessions' runs: 400 KB each, 1.6 MB in all
        old = folder / f"offline-run-2026010{i}_000000-old{i}"
        old.mkdir(parents=True)
        (old / "run.wandb").write_bytes(b"x" * 400_000)
    await telemetry.start()  # opening a run prunes the oldest until the rest fits in 1 MB
    telemetry.log_task(task_id="t", kind="tts", rewards={1: 0.5}, latencies={})
    await telemetry.close()
    left = sorted(p.name for p in offline_runs(tmp_path))
    assert left[:2] == ["offline-run-20260102_000000-old2", "offline-run-20260103_000000-old3"] and len(left) == 3
    assert prune_runs(folder, 0) == [folder / name for name in left[:-1]]  # the newest (this run) always stays
    assert [p.name for p in offline_runs(tmp_path)] == left[-1:]


class FlakyWandb:
    """The real wandb module with failures injected on purpose into init and run.log."""

    errors = wandb.errors
    Settings = wandb.Settings

    def __init__(self, init_failures: int = 0, log_failures: int = 0) -> None:
        self.init_failures = init_failures
        self.log_failures = log_failures
        self.inits = 0

    def init(self, **kwargs: Any) -> Any:
        self.inits += 1
        if self.init_failures:
            self.init_failures -= 1
            raise wandb.errors.CommError("injected: the wandb service is unreachable")
        run = wandb.init(**kwargs)
        real_log = run.log

        def log(data: dict[str, Any]) -> None:
            if self.log_failures:
                self.log_failures -= 1
                raise OSError("injected: disk full")
            real_log(data)

        run.log = log
        return run


class GatedWandb:
    """The real wandb module whose first ``run.log`` waits for a gate: the telemetry thread falls behind."""

    errors = wandb.errors
    Settings = wandb.Settings

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.blocked = threading.Event()

    def init(self, **kwargs: Any) -> Any:
        run = wandb.init(**kwargs)
        real_log = run.log

        def log(data: dict[str, Any]) -> None:
            if not self.gate.is_set():
                self.blocked.set()
                self.gate.wait(30)
            real_log(data)

        run.log = log
        return run


async def test_scores_waiting_for_the_telemetry_thread_are_replaced_by_newer_ones(tmp_path: Path) -> None:
    """A burst of evaluated tasks logs its scores each time; the thread writes every task's row but only
    the newest scores it finds waiting, not 768 summary keys per task."""
    gated = GatedWandb()
    telemetry = Telemetry(settings(tmp_path), hotkey="hk", wandb_module=gated)
    await telemetry.start()
    telemetry.log_task(task_id="t0", kind="tts", rewards={1: 1.0}, latencies={})
    assert await asyncio.to_thread(gated.blocked.wait, 30)  # the thread is inside the first row's log
    for i in range(1, 51):
        telemetry.log_task(task_id=f"t{i}", kind="tts", rewards={1: 1.0}, latencies={})
        telemetry.log_scores([MinerStat(uid=1, hotkey="a", ema_score=i / 100, latency_s=0.2, last_weight=0.5)])
    gated.gate.set()
    await telemetry.close()
    assert telemetry.errors == 0 and telemetry.dropped == 0
    [(_, _, history, summary)] = [read_run(r) for r in offline_runs(tmp_path)]
    assert [row["task/id"] for row in history if "task/id" in row] == [f"t{i}" for i in range(51)]
    scores = [row for row in history if "scores/max" in row]
    assert len(scores) == 1 and scores[0]["scores/max"] == pytest.approx(0.5)
    assert summary["score/uid_1"] == pytest.approx(0.5)


async def test_wandb_failures_are_logged_and_survived(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyWandb(init_failures=1, log_failures=2)
    telemetry = Telemetry(settings(tmp_path), hotkey="hk", wandb_module=flaky)
    with caplog.at_level(logging.WARNING, logger="subnet_proxy.telemetry"):
        await telemetry.start()  # the first init fails: no crash
        for i in range(5):
            telemetry.log_task(task_id=f"t{i}", kind="tts", rewards={0: 1.0}, latencies={0: 0.1})
        await telemetry.close()
    assert telemetry.errors == 3 and telemetry.enabled  # 1 init + 2 log failures, then it recovered
    assert "CommError: injected" in caplog.text and "OSError: injected: disk full" in caplog.text
    assert flaky.inits == 2 and len(offline_runs(tmp_path)) == 1


async def test_wandb_that_keeps_failing_is_switched_off(tmp_path: Path) -> None:
    flaky = FlakyWandb(init_failures=10_000)
    telemetry = Telemetry(settings(tmp_path), hotkey="hk", wandb_module=flaky)
    await telemetry.start()
    for i in range(20):
        telemetry.log_task(task_id=f"t{i}", kind="tts", rewards={0: 1.0}, latencies={})
    await telemetry.close()
    assert not telemetry.enabled and telemetry.errors == MAX_CONSECUTIVE_ERRORS
    assert flaky.inits == MAX_CONSECUTIVE_ERRORS  # it stopped trying


async def test_wandb_off_does_nothing(tmp_path: Path) -> None:
    flaky = FlakyWandb()
    telemetry = Telemetry(settings(tmp_path, off=True), hotkey="hk", wandb_module=flaky)
    await telemetry.start()
    telemetry.log_task(task_id="t", kind="tts", rewards={0: 1.0}, latencies={})
    await telemetry.close()
    assert flaky.inits == 0 and not (tmp_path / "data" / "wandb").exists()


def test_the_run_config_masks_secrets(tmp_path: Path) -> None:
    config = public_config(Settings.model_validate({"proxy": {"api_key": ["sk-live-1", "sk-live-2"],
                                                              "admin_key": "adm-secret"}}))
    assert config["proxy"]["api_key"] == ["***", "***"] and config["proxy"]["admin_key"] == "***"
    assert "sk-live" not in json.dumps(config) and config["neuron"]["sample_size"] == 3


def test_online_unless_offline_or_mock(tmp_path: Path) -> None:
    real = Settings.model_validate({"neuron": {"data_dir": str(tmp_path)}})
    assert Telemetry(real, hotkey="hk").mode == "online"
    offline = Settings.model_validate({"neuron": {"data_dir": str(tmp_path)}, "wandb": {"offline": True}})
    assert Telemetry(offline, hotkey="hk").mode == "offline"


@pytest.fixture
def restore_logging():
    """setup_logging changes process-wide logging: put it back for the tests that follow."""
    names = ["", *QUIET_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for handler in [h for h in logging.getLogger().handlers if h not in handlers]:
        logging.getLogger().removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_third_party_chatter_shows_only_its_warnings_unless_tracing() -> None:
    stream = io.StringIO()
    handler = setup_logging(LoggingSettings(), stream=stream)
    whisper = logging.getLogger("faster_whisper")
    whisper.info("Processing audio with duration 00:04.563")  # written at every model call
    whisper.warning("a warning of its own")
    logging.getLogger("subnet_proxy.test").info("ours")
    handler.flush()
    assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == ["a warning of its own", "ours"]
    stream = io.StringIO()
    handler = setup_logging(LoggingSettings(trace=True), stream=stream)
    whisper.info("Processing audio with duration 00:04.563")
    handler.flush()
    assert "Processing audio" in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_structured_logging_writes_json_lines() -> None:
    stream = io.StringIO()
    handler = setup_logging(LoggingSettings(structured=True, trace=True), stream=stream)
    logger = logging.getLogger("subnet_proxy.test")
    logger.log(TRACE, "fine detail")
    logger.info("task %s done", "t1", extra={"task_id": "t1", "uid": 3})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    handler.flush()  # lines are written by the log writer's thread
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["TRACE", "INFO", "ERROR"]
    assert lines[1]["msg"] == "task t1 done" and lines[1]["task_id"] == "t1" and lines[1]["uid"] == 3
    assert "ValueError: boom" in lines[2]["exc"]


@pytest.mark.usefixtures("restore_logging")
def test_plain_logging_levels() -> None:
    stream = io.StringIO()
    handler = setup_logging(LoggingSettings(debug=True), stream=stream)
    logging.getLogger("subnet_proxy.test").debug("visible")
    logging.getLogger("subnet_proxy.test").log(TRACE, "hidden")
    handler.flush()  # lines are written by the log writer's thread
    assert "visible" in stream.getvalue() and "hidden" not in stream.getvalue()
    assert setup_logging(LoggingSettings(), stream=stream) is not handler  # replaced, not stacked
    assert [h.get_name() for h in logging.getLogger().handlers].count("subnet_proxy") == 1
