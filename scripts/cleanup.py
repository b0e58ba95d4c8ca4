"""Run one retention pass on the configured stores and print what it deleted.

The same pass the validator loop runs every ``--retention.interval_s``; this script is for cron or
for an operator who wants space back now. Examples::

    python scripts/cleanup.py --neuron.data_dir ~/.subnet-proxy
    python scripts/cleanup.py --store firestore --blobs gcs --blobs.gcs_bucket B --retention.done_days 2
    python scripts/cleanup.py --json     # one JSON object instead of lines
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet_proxy.blobs import open_blob_store  # noqa: E402
from subnet_proxy.config import Settings, build_settings  # noqa: E402
from subnet_proxy.retention import RetentionReport, run_retention  # noqa: E402
from subnet_proxy.store import open_task_store  # noqa: E402

SECTIONS = ("neuron", "store", "blobs", "retention")


async def clean(settings: Settings) -> RetentionReport:
    store, blobs = open_task_store(settings), open_blob_store(settings)
    try:
        return await run_retention(store, blobs, settings.retention)
    finally:
        await store.close()
        await blobs.close()


def describe(report: RetentionReport) -> list[str]:
    lines = [f"expired by deadline: {len(report.expired)}"]
    lines += [f"  {task_id}" for task_id in report.expired]
    for status, ids in report.purged.items():
        lines.append(f"deleted {status.value} tasks: {len(ids)}")
        lines += [f"  {task_id}" for task_id in ids]
    lines.append(f"deleted blobs: {len(report.blobs_deleted)} (kept, still referenced: {len(report.blobs_kept)})")
    lines += [f"  {key}" for key in report.blobs_deleted]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--json", action="store_true", help="Print one JSON object.")
    opts, rest = own.parse_known_args(argv)
    description = "Delete tasks and blobs older than the retention policy (--json: print one JSON object)."
    settings = build_settings(rest, description, sections=SECTIONS)
    report = asyncio.run(clean(settings))
    if opts.json:
        print(
            json.dumps(
                {
                    "expired": report.expired,
                    "purged": {status.value: ids for status, ids in report.purged.items()},
                    "blobs_deleted": report.blobs_deleted,
                    "blobs_kept": report.blobs_kept,
                }
            )
        )
    else:
        print("\n".join(describe(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
