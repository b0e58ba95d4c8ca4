"""The validator's state as Prometheus gauges, read when ``/metrics`` is scraped (never kept up to date).

Weights (sets by result, the last block set, blocks since), each loop's health as 0/1 (the same
rules as ``/api/v1/health``), the backlogs, the engine pool's queue, the metagraph's block and age,
and the data folder's disk: what the shipped alert rules (``deploy/prometheus/alerts.yml``) watch.
Labels are loop names and results only.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.engines import Engines
from subnet_proxy.monitoring import LoopCheck
from subnet_proxy.validator.forward import ForwardLoop
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.weights import WeightSetter


class _WeightsCounter(Collector):
    """``subnet_proxy_weights_set_total{result}``: the setter's own counts, as a counter family."""

    def __init__(self, setter: WeightSetter) -> None:
        self.setter = setter

    def collect(self) -> list[Metric]:
        family = CounterMetricFamily("subnet_proxy_weights_set", "Attempts to set weights, by result.",
                                     labels=["result"])
        family.add_metric(["success"], self.setter.successes_total)
        family.add_metric(["failure"], self.setter.failures_total)
        return [family]


class ValidatorGauges:
    """Registers the gauges into ``registry``; ``refresh`` sets them from the loops before a scrape."""

    def __init__(self, registry: CollectorRegistry, *, forward: ForwardLoop, resync: LoopRunner, setter: WeightSetter,
                 metagraph: Callable[[], MetagraphSnapshot], own_hotkey: str, data_dir: Path,
                 engines: Engines | None) -> None:
        self.forward, self.resync, self.setter = forward, resync, setter
        self.metagraph, self.own_hotkey, self.data_dir, self.engines = metagraph, own_hotkey, data_dir, engines
        r = registry
        registry.register(_WeightsCounter(setter))
        self.last_block = Gauge("subnet_proxy_weights_last_block", "Block of this validator's last weights "
                                "(set here, or its last update on chain).", registry=r)
        self.behind = Gauge("subnet_proxy_weights_blocks_since_set", "Blocks since this validator's weights were "
                            "last set (0 while unregistered).", registry=r)
        self.epoch = Gauge("subnet_proxy_weights_epoch_blocks", "Blocks between weight settings (epoch length).",
                           registry=r)
        self.loop_ok = Gauge("subnet_proxy_loop_healthy", "1 while the loop is healthy, 0 while stalled or failing "
                             "(the rules of /api/v1/health).", ["loop"], registry=r)
        self.in_flight = Gauge("subnet_proxy_tasks_in_flight", "Tasks out with miners from this validator.", registry=r)
        self.scoring = Gauge("subnet_proxy_scoring_backlog", "Evaluations waiting or running.", registry=r)
        self.engine_queue = Gauge("subnet_proxy_engine_queue_depth", "Model calls waiting for an engine worker.",
                                  registry=r)
        self.block = Gauge("subnet_proxy_metagraph_block", "Block of the metagraph in use.", registry=r)
        self.resync_age = Gauge("subnet_proxy_metagraph_age_seconds", "Seconds since the last metagraph resync.",
                                registry=r)
        self.disk_free = Gauge("subnet_proxy_data_dir_free_bytes", "Free bytes on the data folder's disk.", registry=r)
        self.disk_size = Gauge("subnet_proxy_data_dir_size_bytes", "Size of the data folder's disk in bytes.",
                               registry=r)

    def refresh(self, checks: dict[str, LoopCheck]) -> None:
        snapshot = self.metagraph()
        self.epoch.set(self.setter.epoch_length)
        me = snapshot.by_hotkey(self.own_hotkey)
        last = max(me.last_update if me else 0, self.setter.last_set_block or 0)
        self.last_block.set(last)
        if me is not None:
            self.behind.set(snapshot.block - last)
        for name, check in checks.items():
            self.loop_ok.labels(name).set(1 if check.ok else 0)
        self.in_flight.set(self.forward.in_flight)
        self.scoring.set(self.forward.scoring_backlog)
        self.engine_queue.set(self.engines.pool.queued if self.engines is not None else 0)
        self.block.set(snapshot.block)
        if self.resync.last_ok_at is not None:
            self.resync_age.set(time.monotonic() - self.resync.last_ok_at)
        try:
            usage = shutil.disk_usage(self.data_dir)
        except OSError:  # the folder is not there yet: no disk figures rather than wrong ones
            return
        self.disk_free.set(usage.free)
        self.disk_size.set(usage.total)
