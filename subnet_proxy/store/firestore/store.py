"""The TaskStore on Cloud Firestore: many proxy/validator processes share one queue through it.

Collections (every name prefixed by ``--store.firestore_prefix``)::

    tasks/{task_id}                       the task (status, lease, timeline...)
    idempotency/{owner~key}               owner + idempotency key -> task_id (created with the task)
    miner_responses/{task_id~hotkey}      one answer per task and miner hotkey
    first_responses/{task_id}             which hotkey answered validly first (created once)
    evaluations/{task_id~validator}       one judgement per task and validator hotkey
    final_results/{task_id}               the answer the client gets
    validators/{hotkey}                   validators seen evaluating: stake, last evaluation
    files/{blob_key}/refs/{task~use}      which tasks use a blob (use: input, result, response.HOTKEY)
    usage/{owner~day}                     a key's counters of one UTC day: totals and one map per kind
    webhooks/{event_id}                   the webhook outbox: one event of a task and its delivery so far

Atomicity: a claim reads its candidates, then takes each with a write conditioned on the update
time of that read (Firestore's compare-and-set), so of concurrent claimers exactly one wins a task
(``queue``). Every other read-modify-write of a task (renew, release, assign, transition, expire)
is a transaction. "Exactly once" records (responses, evaluations, idempotency, first answer) are
``create`` writes with deterministic ids: the second writer gets AlreadyExists and reads the
first's. A first valid answer and its first-answer marker are created in one atomic write, so the
marker never names a response that was not stored; an answer conditional on the task's status
(``only_if``) is written in a transaction that reads the task, and an approval's final result in
the transaction that moves the task to APPROVED. The rules themselves (leases, checked moves) are
``subnet_proxy.store.ops``, shared with every backend.

One module per role of the interface (``records``, ``queue``, ``answers``, ``maintenance``, ``usage``,
``webhooks``), each over the shared ``core`` (the client, the collections, the task transaction); this class joins them.
"""

from __future__ import annotations

from subnet_proxy.config import Settings
from subnet_proxy.store.base import TaskStore
from subnet_proxy.store.firestore.answers import FirestoreAnswers
from subnet_proxy.store.firestore.maintenance import FirestoreMaintenance
from subnet_proxy.store.firestore.queue import FirestoreQueue
from subnet_proxy.store.firestore.records import FirestoreRecords
from subnet_proxy.store.firestore.usage import FirestoreUsage
from subnet_proxy.store.firestore.webhooks import FirestoreWebhooks


class FirestoreTaskStore(FirestoreRecords, FirestoreQueue, FirestoreAnswers, FirestoreMaintenance, FirestoreUsage,
                         FirestoreWebhooks, TaskStore):
    """Firestore via the AsyncClient; credentials from ADC / GOOGLE_APPLICATION_CREDENTIALS, or the
    emulator when FIRESTORE_EMULATOR_HOST is set. ``FirestoreTaskStore(settings.store, *, client=None)``
    (``FirestoreCore``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> FirestoreTaskStore:
        return cls(settings.store)
