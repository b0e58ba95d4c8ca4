"""Per task kind, what an SRE asks of a validator: how many tasks end which way, and how long each step takes.

Prometheus conventions: counters end in ``_total``, durations are ``_seconds`` histograms, and
every label has a bounded set of values (a kind the build registered, a task status, an error code
the code base defines, an answer outcome): never a task id or a hotkey. The same events also feed
the dashboard's last hour (``window.RecentActivity``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from subnet_proxy.kinds import REGISTRY
from subnet_proxy.monitoring.window import RecentActivity
from subnet_proxy.tasks import ResponseState

#: client-visible waits: from a fraction of a second (summaries) to minutes (long audio).
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: time a task waits in the store before a validator takes it.
DISPATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

#: an answer's stored state as the ``outcome`` label.
OUTCOMES: dict[str, str] = {"ok": "valid", "invalid": "invalid", "timeout": "timeout", "error": "error"}


class TaskMetrics:
    """The task lifecycle counters and histograms of one validator process, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.completed = Counter("subnet_proxy_tasks_completed", "Tasks approved (a final result chosen), by kind.",
                                 ["kind"], registry=r)
        self.failed = Counter("subnet_proxy_tasks_failed", "Tasks failed, by kind and error code.", ["kind", "code"],
                              registry=r)
        self.expired = Counter("subnet_proxy_tasks_expired", "Tasks expired at their deadline, by kind.", ["kind"],
                               registry=r)
        self.first_answer = Histogram("subnet_proxy_task_first_answer_seconds", "From submission to the first valid "
                                      "miner answer (what the client waits for).", ["kind"], buckets=TASK_BUCKETS,
                                      registry=r)
        self.approval = Histogram("subnet_proxy_task_approval_seconds", "From submission to approval (final result "
                                  "and rewards recorded).", ["kind"], buckets=TASK_BUCKETS, registry=r)
        self.dispatch = Histogram("subnet_proxy_task_dispatch_seconds", "From pending to claimed by this validator "
                                  "(time in the queue).", ["kind"], buckets=DISPATCH_BUCKETS, registry=r)
        self.scoring = Histogram("subnet_proxy_task_scoring_seconds", "Scoring one task's answers (reward functions "
                                 "and reference models).", ["kind"], buckets=TASK_BUCKETS, registry=r)
        self.answers = Counter("subnet_proxy_miner_answers", "Miner answers recorded, by kind and outcome (valid, "
                               "invalid, timeout, error).", ["kind", "outcome"], registry=r)
        self.recent = RecentActivity()
        for kind in REGISTRY:  # every kind shows from the first scrape (0 until used)
            for family in (self.completed, self.expired, self.first_answer, self.approval, self.dispatch, self.scoring):
                family.labels(kind)
            for outcome in OUTCOMES.values():
                self.answers.labels(kind, outcome)

    def task_submitted(self, kind: str, task_id: str) -> None:
        self.recent.submitted(kind, task_id)

    def task_dispatched(self, kind: str, waited_s: float) -> None:
        self.dispatch.labels(kind).observe(max(0.0, waited_s))

    def task_approved(self, kind: str, task_id: str, seconds: float) -> None:
        self.completed.labels(kind).inc()
        self.approval.labels(kind).observe(max(0.0, seconds))
        self.recent.approved(kind, task_id, seconds)

    def task_failed(self, kind: str, task_id: str, code: str, message: str) -> None:
        self.failed.labels(kind, code).inc()
        self.recent.failed(kind, task_id, code, message)

    def task_expired(self, kind: str, task_id: str) -> None:
        self.expired.labels(kind).inc()
        self.recent.failed(kind, task_id, "expired", "deadline passed")

    def answer(self, kind: str, task_id: str, state: ResponseState, first_after_s: float | None) -> None:
        """A miner answer recorded; ``first_after_s``: seconds since submission when it is the task's first valid."""
        self.answers.labels(kind, OUTCOMES[state]).inc()
        if first_after_s is not None:
            self.first_answer.labels(kind).observe(max(0.0, first_after_s))
            self.recent.first_answer(kind, task_id, first_after_s)

    def scored(self, kind: str, seconds: float) -> None:
        self.scoring.labels(kind).observe(seconds)
