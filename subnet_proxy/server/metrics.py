"""Prometheus metrics of one side-server, in its own registry (no process-global state).

Miner gauges are labelled by uid only: a uid is one of at most 256 slots, while a hotkey label
would start a new series at every registration (and the hotkey is in ``/api/v1/miners``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.utils import floatToGoString

from subnet_proxy.kinds import REGISTRY
from subnet_proxy.tasks import MinerStat, TaskStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("subnet_proxy_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("subnet_proxy_http_request_seconds", "HTTP request latency.",
                                 ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.submitted = Counter("subnet_proxy_tasks_submitted", "Client tasks accepted.", ["kind"],
                                 registry=self.registry)
        self.tasks = Gauge("subnet_proxy_tasks", "Tasks in the store by status.", ["status"], registry=self.registry)
        self.rate_limited = Counter("subnet_proxy_rate_limited", "Requests refused by rate or concurrency limits.",
                                    registry=self.registry)
        self.aborted = Counter("subnet_proxy_http_aborted", "Requests the client abandoned before they were answered "
                               "(disconnected mid-body); counted under status 499.", registry=self.registry)
        self.malformed = Counter("subnet_proxy_http_malformed", "Requests refused with 400 before any route because "
                                 "their head could not be parsed (line too long, too many headers, not HTTP).",
                                 ["code"], registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        # one child per kind registered now, so every kind shows from the first scrape (0 until used)
        self._submitted = {kind: self.submitted.labels(kind) for kind in REGISTRY}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # the labelled children are looked up once per (method, route, status): ``labels()`` costs more
        # than the update itself, and routes are templates, so the table stays small.
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if status == 429:
            self.rate_limited.inc()

    def count_malformed(self, code: str) -> None:
        self.malformed.labels(code).inc()

    def count_submitted(self, kind: str) -> None:
        self._submitted[kind].inc()  # the app's routes are the kinds registered when it was built, as here

    def render(self, counts: dict[TaskStatus, int], miners: list[MinerStat]) -> bytes:
        """The text exposition, with the scrape-time gauges (tasks, miners) refreshed first."""
        for status in TaskStatus:
            self.tasks.labels(status.value).set(counts.get(status, 0))
        return generate_latest(self.registry) + miner_exposition(miners)


def miner_exposition(rows: list[MinerStat]) -> bytes:
    """The per-uid miner gauges in the text format, written directly: with 256 uids that is over a
    thousand lines, and prometheus_client's labelled children (cleared and rebuilt each scrape) or its
    generic sample formatting cost 11-17 ms a scrape here; this costs about 1 ms (measured)."""
    out: list[str] = []
    for name, text, field in MINER_FAMILIES:
        out.append(f"# HELP {name} {text}\n# TYPE {name} gauge\n")
        out.extend(f'{name}{{uid="{m.uid}"}} {floatToGoString(value)}\n'
                   for m in rows if (value := getattr(m, field)) is not None)
    return "".join(out).encode()


#: (metric, help, MinerStat field) of the per-uid gauges.
MINER_FAMILIES = (("subnet_proxy_miner_score", "Miner EMA score.", "ema_score"),
                  ("subnet_proxy_miner_latency_seconds", "Miner mean answer latency.", "latency_s"),
                  ("subnet_proxy_miner_success_rate", "Share of valid answers.", "success_rate"),
                  ("subnet_proxy_miner_weight", "Weight this validator last set for the uid.", "last_weight"))
