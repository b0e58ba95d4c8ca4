"""Every setting in one frozen object, built once in an entry point and passed down.

Flags follow bittensor's dotted convention (``--netuid``, ``--wallet.name``, ``--proxy.port``).
Each section is a pydantic model whose fields are the flags of that section; a field's
``description`` is its ``--help`` text and its default the flag's default. A section's
``backend``/``enabled`` field is spelled as the bare section flag (``--store firestore``,
``--mock``), as the issue tracker and operators write them.

A wrong value fails at start with the field named (``build_settings`` raises ``SettingsError``),
never mid-run.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WalletSettings(_Section):
    name: str = Field("default", description="Wallet (coldkey) name.")
    hotkey: str = Field("default", description="Hotkey name inside the wallet.")
    path: str = Field("~/.bittensor/wallets", description="Folder of wallets.")


class SubtensorSettings(_Section):
    network: str = Field("finney", description="Network name (finney, test, local) or a ws:// endpoint.")
    chain_endpoint: str | None = Field(None, description="Explicit chain endpoint; overrides network.")
    call_timeout: float = Field(30.0, gt=0, description="Seconds any one chain call may take.")


class LoggingSettings(_Section):
    debug: bool = Field(False, description="Debug logging.")
    trace: bool = Field(False, description="Trace logging (very verbose).")
    structured: bool = Field(False, description="One JSON object per log line.")


class NeuronSettings(_Section):
    data_dir: str = Field("~/.subnet-proxy", description="All state: database, blobs, scores, local chain, wallets.")
    sample_size: int = Field(3, ge=1, le=256, description="Miners queried per task.")
    timeout: float = Field(12.0, gt=0, le=600, description="Base dendrite timeout in seconds (scaled by task size).")
    moving_average_alpha: float = Field(0.1, gt=0, le=1, description="EMA weight of a new reward.")
    epoch_length: int = Field(100, ge=1, description="Blocks between weight settings.")
    synthetic_rate: float = Field(0.1, ge=0, le=1, description="Synthetic challenges per client task (0 = none).")
    concurrency: int = Field(8, ge=1, le=1024, description="Tasks in flight at once.")
    lease_s: float = Field(60.0, gt=0, description="Lease on a claimed task; renewed while working.")
    resync_s: float = Field(120.0, gt=0, description="Seconds between metagraph resyncs.")
    recover_s: float = Field(60.0, gt=0, description="Seconds between sweeps that evaluate done tasks this "
                             "validator has not judged (a failed evaluation, a shared store's quorum).")
    synthetic_idle_s: float = Field(60.0, gt=0, description="With no client tasks, one synthetic challenge per "
                                    "this many seconds (when synthetic_rate > 0), so scores keep moving.")
    challenge_corpus: str | None = Field(None, description="Sentence file for synthetic challenges ('## topic' "
                                         "lines, one sentence a line); default: the shipped public corpus. A "
                                         "private one keeps miners from tabulating the answers.")
    shutdown_grace_s: float = Field(30.0, ge=0, description="Seconds in-flight tasks get to finish on shutdown "
                                    "before their leases are released.")
    yield_to_ingest_s: float = Field(0.1, ge=0, le=10, description="While the side-server is taking uploads (POST "
                                     "requests in flight), the forward loop claims new tasks at most this often, "
                                     "so a burst of submissions is taken in first (0: no yielding).")


class ProxySettings(_Section):
    enabled: bool = Field(True, description="Run the side-server.")
    host: str = Field("0.0.0.0", description="Side-server bind address.")
    port: int = Field(8000, ge=0, le=65535, description="Side-server port (0 = any free port).")
    api_key: list[str] = Field(default_factory=list, description="Client API key seeded at start (repeatable).")
    admin_key: str | None = Field(None, description="Key for the admin endpoints (keys management).")
    cors_origins: list[Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+$")]] = Field(
        default_factory=list, description="Browser origin allowed to call the API (CORS), exactly as the browser "
        "sends it: scheme://host[:port] (repeatable; none = no CORS headers).")
    max_upload_mb: float = Field(25.0, gt=0, description="Largest request body accepted, in MB.")
    max_audio_s: float = Field(600.0, gt=0, description="Longest audio accepted for transcription, in seconds.")
    rate_per_s: float = Field(10.0, gt=0, description="Default per-key request rate (token bucket refill).")
    burst: int = Field(20, ge=1, description="Default per-key burst (token bucket size).")
    max_in_flight: int = Field(16, ge=1, description="Default per-key concurrent requests.")
    task_ttl_s: float = Field(3600.0, gt=0, description="A task not finished by then expires.")
    signature_max_age_s: float = Field(60.0, gt=0, description="Oldest signed request accepted.")
    quorum: float = Field(0.5, gt=0, le=1, description="Share of validator stake whose evaluations approve a task.")
    long_poll_max_s: float = Field(60.0, gt=0, le=600, description="Longest ?wait= a result request may hold.")
    watch_poll_s: float = Field(1.0, gt=0, description="Re-read interval of a waiting request (changes made by "
                                "other processes).")
    ws_per_key: int = Field(4, ge=1, description="WebSocket connections one key may hold open (each also "
                            "counts against its max_in_flight); one more is refused with 429 too_many_websockets.")
    ws_subscriptions: int = Field(1000, ge=1, description="Tasks one WebSocket connection follows at most.")
    ws_queue: int = Field(256, ge=1, description="Messages a WebSocket connection may have waiting to be sent; a "
                          "client that reads slower than that is closed with code 4008 (its memory stays bounded).")
    ws_heartbeat_s: float = Field(20.0, gt=0, description="Seconds between WebSocket pings; a client that does not "
                                  "answer within half of it is closed.")
    decodes_per_key: int = Field(2, ge=1, description="Audio files one key (or signing hotkey) may have checked "
                                 "at once; one more is refused with 429 decode_busy.")
    decode_workers: int = Field(2, ge=1, description="Audio checks the side-server runs at once (others wait): "
                                "decoding never takes every core from the event loop.")
    header_timeout_s: float = Field(10.0, gt=0, description="Seconds a new connection has to send its request "
                                    "headers in full; closed after (a half-sent request cannot hold a socket).")
    keepalive_s: float = Field(15.0, gt=0, description="Seconds an idle keep-alive connection is kept.")
    max_connections: int = Field(1024, ge=1, description="Open connections at most; past it new ones are closed at "
                                 "once (logged). Keep it under the descriptor limit (ulimit -n).")
    body_timeout_s: float = Field(60.0, gt=0, description="Seconds a request body may take to arrive in full "
                                  "(408 after): a slow sender cannot hold a connection and its buffer for long.")
    shutdown_grace_s: float = Field(10.0, ge=0, description="Seconds in-flight requests get to finish on shutdown.")
    nonce_cache_size: int = Field(100_000, ge=100, description="Signed-request nonces remembered (replay protection).")
    neuron_rate_per_s: float = Field(100.0, gt=0, description="Per-hotkey rate of signed (miner/validator) calls.")
    neuron_burst: int = Field(200, ge=1, description="Per-hotkey burst of signed calls.")
    public_url: str | None = Field(None, max_length=400, pattern=r"^https?://\S+$",
                                   description="Base URL miners reach this side-server at (https://host:port); "
                                   "synapses then offer <public_url>/api/v1/miner/response for late answers. "
                                   "None = not offered (under --mock: this side-server's own loopback URL).")
    approval_grace_s: float = Field(120.0, gt=0, description="A done task whose quorum (of the validators "
                                    "taking part) is not reached in this many seconds is decided on the "
                                    "evaluations it has; the reason is in its timeline.")
    peers: bool = Field(True, description="Publish --proxy.public_url on chain (under --mock: this side-server's "
                        "loopback URL) and evaluate the done tasks of the validators that publish theirs.")
    peer_poll_s: float = Field(5.0, gt=0, description="Seconds between two rounds over the peers' done tasks.")
    peer_budget_s: float = Field(30.0, gt=0, description="Seconds one peer may take in one round (fetching, "
                                 "scoring, posting); a peer that is down or slow costs no more.")
    webhook_secret: str | None = Field(None, min_length=16, max_length=256, description="Secret that signs webhook "
                                       "events of keys without a webhook secret of their own (X-Signature, HMAC-"
                                       "SHA256). Unset: one is made and kept in DATA_DIR/webhook_secret; set it "
                                       "when several side-servers share a store, so they sign alike.")
    webhook_max_age_s: float = Field(86400.0, gt=0, description="A webhook event is retried (exponential back-off "
                                     "with jitter) until this many seconds after it happened, then given up.")
    webhook_backoff_s: float = Field(1.0, gt=0, description="Pause before a webhook's first retry; it doubles at "
                                     "each failure (each pause drawn between half and all of it).")
    webhook_backoff_max_s: float = Field(600.0, gt=0, description="Longest pause between two webhook attempts.")
    webhook_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds one webhook attempt may take (connect, "
                                     "send, answer); a slower receiver counts as failed and is retried.")
    webhook_concurrency: int = Field(16, ge=1, le=1024, description="Webhook attempts in flight at once; the others "
                                     "wait in the store (never in memory).")
    webhook_poll_s: float = Field(1.0, gt=0, description="Seconds between looks for due webhook events written "
                                  "elsewhere (another process, or before a restart).")
    delivery_window: float = Field(4.0, ge=1, le=20, description="A miner that answered a synapse empty, or let "
                                   "it time out, where delivery was offered may deliver until this many task "
                                   "timeouts after dispatch.")


class AuthSettings(_Section):
    """Credentials accepted besides API keys (which are always on)."""

    firebase_project: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$",
                                         description="Firebase project id: 'Authorization: Bearer <Firebase ID "
                                         "token>' of its users is accepted (needs the 'firebase' extra); none = "
                                         "API keys only.")
    firebase_check_revoked: bool = Field(False, description="Also ask Firebase whether the token was revoked or the "
                                         "user disabled (a call to the Auth API per new token, with the "
                                         "service account's credentials); else only the signature, audience, "
                                         "issuer and expiry are checked, against Google's cached public keys.")
    firebase_timeout_s: float = Field(10.0, gt=0, le=60, description="Seconds one token check may take (fetching "
                                      "Google's keys included) before the request is answered 503.")


class MonitorSettings(_Section):
    """When ``/api/v1/health`` calls a loop stalled (503 with the reason), and how the dashboard updates."""

    resync_stale_s: float = Field(600.0, gt=0, description="Health fails when the last successful metagraph "
                                  "resync is older than this (seconds).")
    weights_stale_epochs: float = Field(2.0, gt=0, description="Health fails when a registered validator's "
                                        "weights are older than this many epochs (blocks since the last set, "
                                        "on chain or here, over --neuron.epoch_length).")
    dispatch_stale_s: float = Field(180.0, gt=0, description="Health fails when tasks are pending and none was "
                                    "dispatched for this long (seconds).")
    scoring_stale_s: float = Field(300.0, gt=0, description="Health fails when evaluations are waiting and none "
                                   "finished for this long (seconds).")
    loop_failures: int = Field(3, ge=1, description="Health fails when a background loop's steps failed this many "
                               "times in a row.")


class StoreSettings(_Section):
    backend: Literal["sqlite", "firestore"] = Field("sqlite", description="TaskStore backend.")
    sqlite_path: str | None = Field(None, description="SQLite file (default: DATA_DIR/tasks.db).")
    firestore_project: str | None = Field(None, description="Google Cloud project (default: from credentials).")
    firestore_database: str = Field("(default)", description="Firestore database id.")
    firestore_prefix: str = Field("", description="Prefix of every collection name (several deployments, one project).")
    poll_s: float = Field(2.0, gt=0, description="New-task poll interval where no listener can serve.")
    firestore_listen: bool = Field(True, description="Firestore: wake on new tasks through a snapshot listener "
                                   "(off: poll every poll_s, for networks that cut long-lived streams).")
    shared: bool | None = Field(None, description="Other validators work on this same store (claiming and "
                                "evaluating its tasks), so every permitted validator counts in its quorums, "
                                "whether or not it published a side-server URL. Default: yes for firestore, no "
                                "for sqlite (a file on one machine; set it when several processes share one).")
    fsync: bool = Field(False, description="Embedded stores: flush every SQLite commit and every local blob (file "
                        "and folder) to disk before answering, so accepted work survives a power loss, at a cost in "
                        "ingest throughput. Off: it survives any crash of the process, and a power loss or OS crash "
                        "may lose the last moments of work (SQLite's WAL default). Firestore and GCS are durable "
                        "either way.")


    @property
    def is_shared(self) -> bool:
        """``shared``, or by default whether the backend is one validators share (a cloud store)."""
        return self.backend == "firestore" if self.shared is None else self.shared


class BlobSettings(_Section):
    backend: Literal["local", "gcs"] = Field("local", description="BlobStore backend.")
    local_dir: str | None = Field(None, description="Blob folder (default: DATA_DIR/blobs).")
    gcs_bucket: str | None = Field(None, description="GCS bucket name.")
    gcs_prefix: str = Field("blobs/", description="Object name prefix in the bucket.")
    signed_url_ttl_s: int = Field(900, ge=60, le=7 * 86400, description="Lifetime of signed result URLs.")
    gcs_signing_key: str | None = Field(None, description="Service-account JSON key that signs result URLs "
                                        "(default: the GCS credentials, when they hold a key; else no signed URLs).")


class RetentionSettings(_Section):
    done_days: float = Field(7.0, gt=0, description="Keep finished (approved) tasks this many days.")
    failed_days: float = Field(3.0, gt=0, description="Keep failed and expired tasks this many days.")
    interval_s: float = Field(3600.0, gt=0, description="Seconds between retention passes.")


class WandbSettings(_Section):
    off: bool = Field(False, description="Disable wandb.")
    project: str = Field("subnet-proxy", description="wandb project.")
    entity: str | None = Field(None, description="wandb entity (team).")
    offline: bool = Field(False, description="Log offline (sync later); automatic under --mock.")
    max_steps: int = Field(10_000, ge=100, description="Rotate the run after this many logged steps.")
    max_local_mb: float = Field(1024.0, ge=1, description="Local wandb run folders (DATA_DIR/wandb) kept within "
                                "this many MB: the oldest finished runs are deleted when a run opens (synced or not).")


class AxonSettings(_Section):
    ip: str = Field("0.0.0.0", description="Axon bind address.")
    port: int = Field(8091, ge=0, le=65535, description="Axon port.")
    external_ip: str | None = Field(None, description="IP announced on chain (never looked up online under --mock).")
    external_port: int | None = Field(None, ge=0, le=65535, description="Port announced on chain.")


class MockSettings(_Section):
    enabled: bool = Field(False, description="Run on the local chain (no subtensor), embedded stores, local miners.")
    miners: int = Field(0, ge=0, le=64, description="Reference miners started as child processes under --mock.")
    block_time_s: float = Field(12.0, gt=0, description="Seconds per block of the local chain (fixed at creation).")
    validator_stake: float = Field(10_000.0, ge=0, description="Stake this validator registers with on the local "
                                   "chain (several local validators: different stakes make a stake quorum).")
    chain_file: str | None = Field(None, description="Local chain JSON file shared by validator and miners "
                                   "(default: DATA_DIR/local_chain/netuid-NETUID.json).")


class EngineSettings(_Section):
    asr_model: str | None = Field(None, description="Whisper model (CTranslate2 name or path); default: tiny.en.")
    tts_voice: str | None = Field(None, description="Piper voice (.onnx path or name); default: shipped voice.")
    embedding_model: str | None = Field(None, description="Sentence embedding model folder; default: shipped MiniLM.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the models run.")
    workers: int = Field(1, ge=1, le=64, description="Model calls run at once (worker threads).")
    nice: int = Field(10, ge=0, le=19, description="CPU niceness of the model threads, so model work yields the "
                      "cores to the side-server's intake (0 = same priority).")
    asr_beam_size: int = Field(5, ge=1, le=16, description="Whisper beam width (1 = greedy, fastest).")
    asr_chunk_s: float = Field(300.0, ge=30, le=3600, description="Long audio is transcribed in chunks this long.")


class MinerSettings(_Section):
    min_stake: float = Field(0.0, ge=0, description="Least stake a caller needs (besides a validator permit).")
    allow_non_validators: bool = Field(False, description="Answer callers without a validator permit (testing only).")
    max_body_mb: float = Field(40.0, gt=0, description="Largest request body the axon reads, in MB.")
    max_audio_s: float = Field(600.0, gt=0, description="Longest audio transcribed, in seconds.")
    tts_format: Literal["wav", "flac"] = Field("flac", description="Container of synthesized audio.")


class Settings(_Section):
    netuid: int = Field(1, ge=0, le=65535, description="Subnet uid.")
    wallet: WalletSettings = WalletSettings()
    subtensor: SubtensorSettings = SubtensorSettings()
    logging: LoggingSettings = LoggingSettings()
    neuron: NeuronSettings = NeuronSettings()
    proxy: ProxySettings = ProxySettings()
    auth: AuthSettings = AuthSettings()
    monitor: MonitorSettings = MonitorSettings()
    store: StoreSettings = StoreSettings()
    blobs: BlobSettings = BlobSettings()
    retention: RetentionSettings = RetentionSettings()
    wandb: WandbSettings = WandbSettings()
    axon: AxonSettings = AxonSettings()
    mock: MockSettings = MockSettings()
    engine: EngineSettings = EngineSettings()
    miner: MinerSettings = MinerSettings()

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(self.neuron.data_dir))


class SettingsError(ValueError):
    """A flag value is wrong; the message names it."""


#: fields written as the bare section flag (``--store sqlite``, ``--mock``).
_BARE_FIELDS = ("backend", "enabled")


def _flag(section: str | None, name: str) -> str:
    if section is None:
        return f"--{name}"
    return f"--{section}" if name in _BARE_FIELDS else f"--{section}.{name}"


def _scalar(annotation: Any) -> tuple[Any, bool, Sequence[str] | None]:
    """(python type, is_list, choices) of a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar(args[0])
    if origin is list:
        inner, _, choices = _scalar(typing.get_args(annotation)[0])
        return inner, True, choices
    if origin is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), False, choices
    return annotation, False, None


def _add_field(parser: argparse._ArgumentGroup, section: str | None, name: str, info: Any) -> None:
    flag = _flag(section, name)
    dest = name if section is None else f"{section}.{name}"
    kind, is_list, choices = _scalar(info.annotation)
    default = info.get_default(call_default_factory=True)
    help_text = f"{info.description} (default: {default!r})"
    if kind is bool:
        parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=help_text)
    elif is_list:
        parser.add_argument(flag, dest=dest, action="append", default=argparse.SUPPRESS, help=help_text)
    else:
        parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, choices=choices, help=help_text,
                            metavar=name.upper() if choices is None else None)


def program_name() -> str | None:
    """``python -m package`` for a program started that way (argparse would say ``__main__.py``);
    None for a script or console command, whose own name argparse shows."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None) or ""
    return f"python -m {name.removesuffix('.__main__')}" if name.endswith(".__main__") else None


def build_parser(description: str, *, sections: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """An argparse parser with a flag for every setting (or only the named sections')."""
    parser = argparse.ArgumentParser(prog=program_name(), description=description)
    top = parser.add_argument_group("subnet")
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            if sections is not None and name not in sections:
                continue
            group = parser.add_argument_group(name)
            for field_name, field_info in annotation.model_fields.items():
                _add_field(group, name, field_name, field_info)
        else:
            _add_field(top, None, name, info)
    return parser


def settings_from_namespace(ns: argparse.Namespace) -> Settings:
    """Turn parsed flags into Settings; pydantic checks and converts every value."""
    data: dict[str, Any] = {}
    for dest, value in vars(ns).items():
        section, _, name = dest.rpartition(".")
        (data.setdefault(section, {}) if section else data)[name] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            flag = _flag(loc[0], loc[1]) if len(loc) > 1 else _flag(None, loc[0])
            problems.append(f"{flag}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from exc


def build_settings(argv: Sequence[str] | None, description: str, *, sections: Sequence[str] | None = None) -> Settings:
    """Parse ``argv`` into Settings; bad values exit with the flag named (argparse's usage error)."""
    parser = build_parser(description, sections=sections)
    ns = parser.parse_args(argv)
    try:
        return settings_from_namespace(ns)
    except SettingsError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
