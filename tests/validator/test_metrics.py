"""Per-kind metrics of a real validator (embedded store, local chain, a real axon) as ``/metrics`` shows them."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from subnet_proxy.monitoring.metered import MeteredStore
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus
from tests.validator.test_forward import GOOD, summarizer, summary_task

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: what a counter or histogram family is queried as.
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")


async def scrape(harness, validator) -> str:
    """``/metrics`` of a side-server over the validator (the second scrape: HTTP metrics count the first)."""
    async with harness.served(validator) as (url, _), aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(url + "/metrics") as resp:
                text = await resp.text()
    return text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_task_lifecycle_shows_per_kind_in_metrics(harness) -> None:
    metrics = TaskMetrics()
    harness.store = MeteredStore(harness.store, metrics)  # what run.py builds: the loop and server share it
    miner_uid = await harness.add_miner("m1", summarizer(GOOD))
    validator = await harness.validator(metrics=metrics)
    good = summary_task()
    await harness.store.create_task(good)
    broken = Task(kind=TaskKind.TRANSCRIPTION, owner="client", input=TaskInput(audio_blob="0" * 64, audio_format="wav"))
    await harness.store.create_task(broken)
    await harness.wait_status(good.task_id, TaskStatus.APPROVED)
    await harness.wait_status(broken.task_id, TaskStatus.FAILED)

    for _ in range(40):  # weights are set on the next block (epoch length 1)
        if validator.weights.setter.successes_total:
            break
        await asyncio.sleep(0.25)
    text = await scrape(harness, validator)
    got = samples(text)
    summ = (("kind", "summarization"),)
    assert got[("subnet_proxy_tasks_completed_total", summ)] == 1
    for histogram in ("first_answer", "approval", "dispatch", "scoring"):
        assert got[(f"subnet_proxy_task_{histogram}_seconds_count", summ)] == 1, histogram
    assert got[("subnet_proxy_miner_answers_total", (("kind", "summarization"), ("outcome", "valid")))] == 1
    assert got[("subnet_proxy_tasks_failed_total", (("code", "bad_input"), ("kind", "transcription")))] == 1
    assert got[("subnet_proxy_tasks_expired_total", (("kind", "tts"),))] == 0  # every kind from the first scrape
    assert got[("subnet_proxy_weights_set_total", (("result", "success"),))] >= 1
    assert got[("subnet_proxy_weights_last_block", ())] > 0
    assert got[("subnet_proxy_loop_healthy", (("loop", "dispatch"),))] == 1
    assert got[("subnet_proxy_engine_queue_depth", ())] == 0
    assert got[("subnet_proxy_data_dir_free_bytes", ())] > 0
    assert got[("subnet_proxy_miner_score", (("uid", str(miner_uid)),))] > 0
    labels = {value for (_, pairs) in got for _, value in pairs}
    assert good.task_id not in text and not any(len(v) >= 32 for v in labels)  # no ids, no hotkeys as labels


def queried_metrics() -> dict[str, set[str]]:
    """Metric names each shipped file queries: the alert rules' and the Grafana dashboard's expressions."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alert_exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    board = json.loads((DEPLOY / "grafana" / "subnet-proxy.json").read_text())
    board_exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    names = re.compile(r"\bsubnet_proxy_[a-z0-9_]+")
    return {"alerts.yml": {n for e in alert_exprs for n in names.findall(e)},
            "subnet-proxy.json": {n for e in board_exprs for n in names.findall(e)}}


async def test_every_metric_the_alerts_and_the_dashboard_query_is_served(harness) -> None:
    validator = await harness.validator()
    served = set()
    for family in text_string_to_metric_families(await scrape(harness, validator)):
        served |= {family.name + suffix for suffix in SUFFIXES} | {s.name for s in family.samples}
    queried = queried_metrics()
    assert len(queried["alerts.yml"]) >= 8 and len(queried["subnet-proxy.json"]) >= 20
    for source, names in queried.items():
        assert names <= served, f"{source} queries metrics /metrics does not serve: {sorted(names - served)}"


def test_promtool_checks_the_alert_rules_and_runs_their_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: scripts/emulators.sh install-deps installs Debian's prometheus package")
    folder = DEPLOY / "prometheus"
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *command], cwd=folder, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout
