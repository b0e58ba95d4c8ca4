"""Back up or restore a validator's state: tasks, responses, results, keys, blobs and scores.

    python scripts/backup.py export BACKUP_DIR --neuron.data_dir ~/.subnet-proxy
    python scripts/backup.py import BACKUP_DIR --neuron.data_dir /new/empty/dir
    python scripts/backup.py export BACKUP_DIR --store firestore --blobs gcs --blobs.gcs_bucket B

The embedded stores are copied online (SQLite's backup API: no need to stop the validator); the
cloud stores are walked document by document and object by object. An import needs the backends
the export had and an empty target. See ``subnet_proxy/backup`` for the snapshot's layout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet_proxy.backup import BackupError, export_backup, import_backup  # noqa: E402
from subnet_proxy.config import build_settings  # noqa: E402

SECTIONS = ("neuron", "store", "blobs")


def main(argv: Sequence[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("action", choices=("export", "import"))
    own.add_argument("folder", type=Path)
    opts, rest = own.parse_known_args(argv)
    settings = build_settings(rest, "export|import FOLDER: back up or restore the validator's state.",
                              sections=SECTIONS)
    try:
        if opts.action == "export":
            report = export_backup(settings, opts.folder)
        else:
            report = import_backup(settings, opts.folder)
    except (BackupError, OSError) as exc:
        print(f"backup {opts.action} failed: {exc}", file=sys.stderr)
        return 1
    done = "exported to" if opts.action == "export" else "imported from"
    parts = ", ".join(f"{name}: {count}" for name, count in report.counts.items())
    print(f"{done} {opts.folder} (store {report.store}, blobs {report.blobs}): {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
