"""Telemetry: logging set-up (plain, debug/trace, structured JSON; written off the loop) and the validator's wandb run.

wandb gets one run per validator session (config, per-task rewards and latencies, per-uid scores
and weights). It runs offline under ``--wandb.offline`` or ``--mock`` (nothing leaves the machine;
``wandb sync`` uploads later), and not at all under ``--wandb.off`` or without the wandb extra.
A run rotates after ``--wandb.max_steps`` logged steps (same group, next index), before wandb's
history limits make a long-lived run unwieldy. A run's history holds only figures summarised over
the uids (best and mean reward, answers, score and weight spread): the per-uid values go into the
run's summary, overwritten, so 256 uids never become thousands of history columns. When a run
opens, the oldest local run folders are deleted until they fit in ``--wandb.max_local_mb``.

wandb is third-party I/O on the validator's hot path, so every wandb call runs on one dedicated
thread in submission order; the loop only enqueues (``log_*`` never block, a full queue drops and
counts). Scores are latest-wins: every evaluated task logs them (a summary of one key per uid for
score, latency and weight: 768 keys with 256 uids), so while a row of them waits for the thread a
newer one replaces it instead of queueing behind it. Under a burst of tasks the thread writes each
task's row and the scores as they stand when it gets to them, not once per task (issue 16).
A wandb error is logged and counted, never raised; after ``MAX_CONSECUTIVE_ERRORS`` in a
row wandb is switched off for the session instead of failing on every task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from subnet_proxy.config import LoggingSettings, Settings
from subnet_proxy.log_writer import BackgroundHandler
from subnet_proxy.tasks import MinerStat

log = logging.getLogger(__name__)

#: a level below DEBUG for ``--logging.trace``.
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: wandb calls waiting on the telemetry thread before new ones are dropped.
MAX_PENDING = 1000
#: wandb errors in a row after which wandb is switched off for the session.
MAX_CONSECUTIVE_ERRORS = 5

_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any ``extra=`` fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """``time level logger: message``, the time as ``logging.Formatter`` writes it, its date and seconds made
    once a second: ``strftime`` for every line cost more than the rest of an access-log line's formatting."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp, self._second = time.strftime(self.default_time_format, self.converter(record.created)), second
        return f"{self._stamp},{int(record.msecs):03d}"


#: third-party loggers that show only their warnings unless tracing (``--logging.trace``): faster-whisper
#: alone wrote two INFO lines for every model call ("Processing audio with duration ...").
QUIET_LOGGERS = ("websockets", "urllib3", "asyncio", "filelock", "wandb", "faster_whisper")


def setup_logging(settings: LoggingSettings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Configure the root logger once per process (calling again replaces this module's handler). Lines are
    formatted and written by a writer thread (``log_writer``): the handler's ``flush`` waits for them."""
    level = TRACE if settings.trace else logging.DEBUG if settings.debug else logging.INFO
    handler = BackgroundHandler(stream or sys.stderr, JsonFormatter() if settings.structured else PlainFormatter())
    handler.set_name("subnet_proxy")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "subnet_proxy"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(level if settings.trace else logging.WARNING)
    return handler


def public_config(settings: Settings) -> dict[str, Any]:
    """The settings as a run's config, with secrets (API and admin keys) masked."""
    config = settings.model_dump(mode="json")
    proxy = config["proxy"]
    proxy["api_key"] = ["***"] * len(proxy["api_key"])
    proxy["admin_key"] = "***" if proxy["admin_key"] else None
    return config


def _wandb_errors(wandb: Any) -> tuple[type[BaseException], ...]:
    """What a failing wandb call raises: its own errors, I/O errors, and bad values it refuses."""
    return (wandb.errors.Error, OSError, RuntimeError, ValueError, TypeError)


class Telemetry:
    """The wandb run of one validator session; inert when wandb is off or unavailable."""

    def __init__(self, settings: Settings, *, hotkey: str, config: Mapping[str, Any] | None = None,
                 wandb_module: Any = None) -> None:
        self._settings = settings.wandb
        self._offline = settings.wandb.offline or settings.mock.enabled
        self._dir = settings.data_dir / "wandb"
        self._config = dict(config) if config is not None else public_config(settings)
        self._hotkey = hotkey
        self._session = uuid.uuid4().hex[:8]
        self._wandb = wandb_module
        self.enabled = not settings.wandb.off
        self.run: Any = None
        self.run_index = 0
        self.steps_in_run = 0
        self.errors = 0
        self.dropped = 0
        self._consecutive_errors = 0
        self._pending = 0
        self._pending_lock = threading.Lock()
        #: latest-wins rows waiting for the telemetry thread, by name (see ``_log``).
        self._waiting: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def mode(self) -> str:
        return "offline" if self._offline else "online"

    @property
    def group(self) -> str:
        return f"validator-{self._hotkey[:8]}-{self._session}"

    async def start(self) -> None:
        """Open the first run (on the telemetry thread); wandb missing or failing only disables it."""
        if not self.enabled:
            return
        if self._wandb is None:
            try:
                import wandb
            except ImportError:
                log.warning("wandb is not installed (pip install 'subnet-proxy[wandb]'): telemetry off")
                self.enabled = False
                return
            self._wandb = wandb
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="telemetry")
        await asyncio.wrap_future(self._pool.submit(self._guarded, self._open_run))

    def log_task(self, *, task_id: str, kind: str, rewards: Mapping[int, float], latencies: Mapping[int, float],
                 synthetic: bool = False, status: str | None = None) -> None:
        """One finished task: rewards and latencies summarised in the history, per uid in the summary
        (enqueued, never blocks)."""
        data: dict[str, Any] = {"task/kind": kind, "task/synthetic": int(synthetic), "task/id": task_id,
                                "task/answers": len(rewards)}
        if status is not None:
            data["task/status"] = status
        if rewards:
            data["task/best_reward"] = max(rewards.values())
            data["task/mean_reward"] = sum(rewards.values()) / len(rewards)
        if latencies:
            data["task/fastest_s"] = min(latencies.values())
        per_uid = {f"reward/{kind}/uid_{uid}": float(r) for uid, r in rewards.items()}
        per_uid.update({f"latency/{kind}/uid_{uid}": float(s) for uid, s in latencies.items()})
        self._log(data, per_uid)

    def log_scores(self, stats: Sequence[MinerStat]) -> None:
        """EMA scores: their spread in the history, each uid's score, latency and last weight in the summary."""
        per_uid: dict[str, Any] = {}
        for s in stats:
            per_uid[f"score/uid_{s.uid}"] = s.ema_score
            if s.latency_s is not None:
                per_uid[f"latency_ema/uid_{s.uid}"] = s.latency_s
            if s.last_weight is not None:
                per_uid[f"weight/uid_{s.uid}"] = s.last_weight
        self._log(_spread("scores", [s.ema_score for s in stats]), per_uid, latest="scores")

    def log_weights(self, uids: Sequence[int], weights: Sequence[float], *, block: int, success: bool) -> None:
        data: dict[str, Any] = {"weights/block": block, "weights/success": int(success),
                                **_spread("weights", list(weights))}
        self._log(data, {f"weights/uid_{u}": float(w) for u, w in zip(uids, weights, strict=True)})

    async def close(self) -> None:
        """Flush what is queued and finish the run."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await asyncio.wrap_future(pool.submit(self._guarded, self._finish_run))
        pool.shutdown(wait=False)

    # -- on the telemetry thread ---------------------------------------------------------------------

    def _log(self, data: dict[str, Any], summary: dict[str, Any] | None = None, *, latest: str | None = None) -> None:
        """Queue one row for the telemetry thread; with ``latest``, one that a newer row of the same name
        replaces while it waits."""
        if not self.enabled or self._pool is None:
            return
        row = (data, summary or {})
        with self._pending_lock:
            if latest is not None and latest in self._waiting:
                self._waiting[latest] = row
                return
            if self._pending >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending += 1
            if latest is not None:
                self._waiting[latest] = row
        written = (lambda: self._take(latest)) if latest is not None else (lambda: row)
        self._pool.submit(self._guarded, lambda: self._log_now(*written()), counted=True)

    def _take(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest row queued under ``name`` (on the telemetry thread, as it is written)."""
        with self._pending_lock:
            return self._waiting.pop(name)

    def _guarded(self, fn: Callable[[], None], counted: bool = False) -> None:
        try:
            if self.enabled:
                fn()
                self._consecutive_errors = 0
        except _wandb_errors(self._wandb) as exc:
            self.errors += 1
            self._consecutive_errors += 1
            log.warning("wandb failed (%s: %s)", type(exc).__name__, exc)
            if self._consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                log.error("wandb failed %d times in a row: telemetry off for this session", self._consecutive_errors)
                self.enabled = False
        finally:
            if counted:
                with self._pending_lock:
                    self._pending -= 1

    def _log_now(self, data: dict[str, Any], summary: dict[str, Any]) -> None:
        if self.run is None:
            self._open_run()
        elif self.steps_in_run >= self._settings.max_steps:
            self._finish_run()
            self._open_run()
        self.run.log(data)
        if summary:
            self.run.summary.update(summary)
        self.steps_in_run += 1

    def _open_run(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        pruned = prune_runs(self._dir / "wandb", int(self._settings.max_local_mb * 1024 * 1024))
        if pruned:
            log.info("wandb: deleted %d old local run folder(s) to stay within %.0f MB", len(pruned),
                     self._settings.max_local_mb)
        wandb = self._wandb
        self.run = wandb.init(
            project=self._settings.project, entity=self._settings.entity, mode=self.mode, dir=str(self._dir),
            name=f"{self.group}-{self.run_index}", group=self.group, job_type="validator",
            config={**self._config, "hotkey": self._hotkey, "run_index": self.run_index},
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True,
                                    save_code=False, disable_job_creation=True),
        )
        self.run_index += 1
        self.steps_in_run = 0

    def _finish_run(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            run.finish()


def _spread(prefix: str, values: Sequence[float]) -> dict[str, Any]:
    """A per-uid series as a few history figures: mean, max, how many above zero."""
    if not values:
        return {}
    return {f"{prefix}/mean": sum(values) / len(values), f"{prefix}/max": max(values),
            f"{prefix}/nonzero": sum(1 for v in values if v > 0)}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def prune_runs(folder: Path, max_bytes: int) -> list[Path]:
    """Delete the oldest wandb run folders (``run-*``, ``offline-run-*``: their names start with the start
    time) until the rest fit in ``max_bytes``; the newest is always kept. The deleted folders."""
    runs = sorted((p for p in folder.glob("*run-*") if p.is_dir() and not p.is_symlink()),
                  key=lambda p: p.name.removeprefix("offline-"))
    sizes = {p: _size(p) for p in runs}
    total, deleted = sum(sizes.values()), []
    for path in runs[:-1]:
        if total <= max_bytes:
            break
        shutil.rmtree(path, ignore_errors=True)
        total -= sizes[path]
        deleted.append(path)
    return deleted
