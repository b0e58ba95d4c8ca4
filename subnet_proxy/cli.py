"""The ``subnet-proxy`` console script: submit tasks, wait with a progress line, fetch status and results.

    subnet-proxy submit transcription speech.wav --wait
    subnet-proxy submit tts "Hello there" -o hello.wav
    subnet-proxy submit summarize @article.txt --max-words 60 --wait
    subnet-proxy status TASK_ID
    subnet-proxy result TASK_ID -o out.wav
    subnet-proxy usage --days 30            (a table; --json for the report itself)
    subnet-proxy watch TASK_ID TASK_ID ...     # or --all: live status of tasks, over the WebSocket

The server URL and key come from ``--url``/``--api-key`` or ``SUBNET_PROXY_URL``/``SUBNET_PROXY_API_KEY``.
The ``submit`` verbs are the registered task kinds' (``KindSpec.cli``); a kind whose result is audio
always waits, to write the file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from protocol.audio import sniff_format
from subnet_proxy.api.schemas import TaskStatusView
from subnet_proxy.api.usage import UsageReport
from subnet_proxy.api.ws import TaskEvent
from subnet_proxy.client import ProxyClient, ProxyError, TaskResult
from subnet_proxy.kinds import REGISTRY, ResultMedia, submit_path

DEFAULT_URL = "http://127.0.0.1:8000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subnet-proxy", description="Client of a subnet-proxy side-server.")
    parser.add_argument("--url", default=os.environ.get("SUBNET_PROXY_URL", DEFAULT_URL), help="Server base URL.")
    parser.add_argument("--api-key", default=os.environ.get("SUBNET_PROXY_API_KEY"), help="Client API key.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Seconds to wait for a result.")
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="Submit a task.")
    kinds = submit.add_subparsers(dest="kind", required=True)
    for spec in REGISTRY.values():
        if spec.cli is None:
            continue
        p = kinds.add_parser(spec.cli.name, aliases=list(spec.cli.aliases), help=spec.cli.help)
        spec.cli.add_arguments(p)
        p.set_defaults(spec=spec)
        p.add_argument("--wait", action="store_true", help="Wait for the result with a progress display.")
        p.add_argument("--final", action="store_true", help="Wait for the evaluated result, not the first answer.")
        p.add_argument("-o", "--output", type=Path, help="Write the result here (audio for TTS).")
        p.add_argument("--idempotency-key", help="Same key, same task: safe to retry.")
        p.add_argument("--callback-url", help="Where the server POSTs the task's signed webhook events.")

    st = sub.add_parser("status", help="Show a task's status.")
    st.add_argument("task_id")
    rs = sub.add_parser("result", help="Fetch a task's result.")
    rs.add_argument("task_id")
    rs.add_argument("--wait", action="store_true")
    rs.add_argument("--final", action="store_true")
    rs.add_argument("-o", "--output", type=Path)
    ls = sub.add_parser("tasks", help="List your own tasks, newest first (one page, as JSON).")
    ls.add_argument("--status", help="Only tasks in this status.")
    ls.add_argument("--kind", help="Only tasks of this kind.")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--cursor", help="The previous page's next_cursor (same filters).")
    cn = sub.add_parser("cancel", help="Cancel a pending or distributed task.")
    cn.add_argument("task_id")
    us = sub.add_parser("usage", help="Show tasks, audio seconds and characters used, by UTC day and kind.")
    us.add_argument("--days", type=int, default=7, help="UTC days, today included.")
    us.add_argument("--key", help="Admin keys: only this key id (else every key).")
    us.add_argument("--json", action="store_true", help="The report as JSON instead of a table.")
    wt = sub.add_parser("watch", help="Follow tasks live over the WebSocket (one line per task).")
    wt.add_argument("task_ids", nargs="*")
    wt.add_argument("--all", action="store_true", help="All your tasks as they change (until interrupted).")
    sub.add_parser("health", help="Show the server's health.")
    sub.add_parser("miners", help="Show the miner table.")
    return parser


def progress_line(view: TaskStatusView, started: float) -> str:
    answered = sum(1 for m in view.miners if m.state != "waiting")
    miners = f"miners {answered}/{len(view.miners)} answered" if view.miners else "waiting for miners"
    first = " · first answer in" if view.first_response else ""
    return f"[{view.status.value:>11}] {miners}{first} · {time.monotonic() - started:5.1f}s"


class Progress:
    """One self-overwriting status line on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.last = ""

    def __call__(self, view: TaskStatusView) -> None:
        line = progress_line(view, self.started)
        if self.stream.isatty():
            self.stream.write("\r" + line)
        elif line.rsplit("·", 1)[0] != self.last.rsplit("·", 1)[0]:  # a new state, not just a new time
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = line

    def done(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")


def usage_table(report: UsageReport) -> str:
    """The report as a plain table: one block per key, a row per day and kind, then the key's totals."""
    lines = [f"usage {report.since} .. {report.until} (UTC)"]
    header = f"{'day':<10}  {'kind':<14}  {'tasks':>7}  {'audio s':>10}  {'chars':>10}"
    for key in report.keys:
        quota = key.quota
        caps = "" if quota is None else " · daily quota: " + ", ".join(
            f"{value:g} {unit}" for value, unit in ((quota.daily_tasks, "tasks"), (quota.daily_audio_s, "audio s"),
                                                    (quota.daily_chars, "chars")) if value is not None)
        lines += ["", f"{key.key_id}" + (f" ({key.name})" if key.name else "") + caps, header]
        rows = [(str(d.day), kind, used) for d in key.days for kind, used in d.kinds.items()]
        for day, kind, used in [*rows, ("total", "", key.total)]:
            lines.append(f"{day:<10}  {kind:<14}  {used.tasks:>7}  {used.audio_s:>10.1f}  {used.chars:>10}")
    if not report.keys:
        lines.append("no usage")
    return "\n".join(lines)


class WatchDisplay:
    """One line per task, redrawn in place on a terminal; a plain line per event otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: dict[str, str] = {}
        self.answers: dict[str, int] = {}
        self.drawn = 0

    def __call__(self, event: TaskEvent) -> None:
        data, task_id = event.data, event.task_id
        if event.event == "response":
            self.answers[task_id] = self.answers.get(task_id, 0) + 1
            what = f"answer from uid {data['uid']} ({data['state']}{', first' if data['first'] else ''})"
        elif event.event == "result":
            what = f"result from uid {data['uid']} (score {data['score']:.2f})"
        elif event.event == "end":
            what = f"ended {data['status']}"
        else:
            what = f"{data['status']}{' (' + data['reason'] + ')' if data.get('reason') else ''}"
        if not self.stream.isatty():
            self.stream.write(f"{task_id} {event.event} {what}\n")
        else:
            self.lines[task_id] = f"{task_id}  {what:<48} answers {self.answers.get(task_id, 0)}"
            self.stream.write(f"\x1b[{self.drawn}F" if self.drawn else "")
            self.stream.write("".join(f"\x1b[2K{line}\n" for line in self.lines.values()))
            self.drawn = len(self.lines)
        self.stream.flush()


def emit(result: TaskResult, output: Path | None, task_id: str) -> None:
    if result.audio is not None:
        fmt = sniff_format(result.audio) or "bin"
        path = output or Path(f"{task_id}.{fmt}")
        path.write_bytes(result.audio)
        print(f"{result.stage} result: {len(result.audio)} bytes of {result.content_type} written to {path}")
        return
    text = result.text or ""
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        print(f"{result.stage} result written to {output}")
    else:
        print(text)


async def _wait_and_emit(client: ProxyClient, task_id: str, args: argparse.Namespace) -> None:
    progress = Progress(sys.stderr)
    try:
        result = await client.wait(task_id, timeout_s=args.timeout, stage="final" if args.final else "any",
                                   on_progress=progress)
    finally:
        progress.done()
    emit(result, args.output, task_id)


async def run(args: argparse.Namespace) -> int:
    async with ProxyClient(args.url, api_key=args.api_key, timeout_s=min(args.timeout, 60.0)) as client:
        if args.command == "health":
            print((await client.health()).model_dump_json(indent=2))
        elif args.command == "miners":
            print((await client.miners()).model_dump_json(indent=2))
        elif args.command == "status":
            print((await client.status(args.task_id)).model_dump_json(indent=2))
        elif args.command == "tasks":
            page = await client.list_tasks(status=args.status, kind=args.kind, limit=args.limit, cursor=args.cursor)
            print(page.model_dump_json(indent=2))
        elif args.command == "usage":
            report = await client.usage(days=args.days, key=args.key)
            print(report.model_dump_json(indent=2) if args.json else usage_table(report))
        elif args.command == "watch":
            if bool(args.task_ids) == args.all:
                raise ValueError("name task ids or --all")
            display = WatchDisplay(sys.stdout)
            async for event in client.watch(args.task_ids, everything=args.all):
                display(event)
        elif args.command == "cancel":
            print((await client.cancel(args.task_id)).model_dump_json(indent=2))
        elif args.command == "result":
            if args.wait:
                await _wait_and_emit(client, args.task_id, args)
            else:
                found = await client.result(args.task_id, stage="final" if args.final else "any")
                if found is None:
                    print("no result yet", file=sys.stderr)
                    return 3
                emit(found, args.output, args.task_id)
        else:
            spec = args.spec
            accepted = await spec.cli.submit(client, submit_path(spec.kind), args)
            print(json.dumps(accepted.model_dump(mode="json")), file=sys.stderr if args.wait else sys.stdout)
            if args.wait or spec.result is ResultMedia.AUDIO:
                await _wait_and_emit(client, accepted.task_id, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except ProxyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
