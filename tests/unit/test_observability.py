"""Alert rules, their unit tests and the Grafana dashboard, checked against what the code exports:
promtool (Debian's ``prometheus`` package) validates and unit-tests the rules, and every
``vigil_*`` metric a rule or a panel names must be one a Vigil process really serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Metric
from redis import Redis
from sqlalchemy import create_engine

from vigil_api.core.auth import AUTH_FAILURES
from vigil_api.core.build_slots import BUILDING, REFUSED
from vigil_api.core.middleware import LATENCY, REQUESTS
from vigil_api.retention.sweep import RetentionMetrics
from vigil_inference.metrics import InferenceMetrics
from vigil_ingest.metrics import IngestMetrics
from vigil_shared.metrics import ConsumerMetrics
from vigil_shared.settings import REPO_ROOT
from vigil_trainer.metrics import TrainerCollector

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "vigil-dashboard.json"
METRIC = re.compile(r"\bvigil_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
}


def sample_names(families: Iterable[Metric]) -> set[str]:
    """The names a scrape shows for these families (a counter ``x`` is ``x_total``...)."""
    names: set[str] = set()
    for family in families:
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def described(registry: CollectorRegistry) -> Iterator[Metric]:
    yield from registry.collect()


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every metric name a Vigil process serves: each process's own registry, the API's metrics,
    and the trainer's collector (described: its clients connect lazily, so no server is asked)."""
    trainer = TrainerCollector(engine=create_engine("postgresql+psycopg://"), redis=Redis())
    names = sample_names(trainer.describe())
    for metric in (AUTH_FAILURES, REQUESTS, LATENCY, BUILDING, REFUSED):
        names |= sample_names(metric.describe())
    for registry in (
        IngestMetrics().registry,
        InferenceMetrics().registry,
        ConsumerMetrics("test").registry,
        RetentionMetrics().registry,
    ):
        names |= sample_names(described(registry))
    return names


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run scripts/stack.sh install (Debian's prometheus)")
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{output}"
    return output


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_rules_and_config_pass_promtool() -> None:
    assert f"SUCCESS: {len(rules())} rules found" in run_promtool("check", "rules", "alerts.yml")
    assert "is valid prometheus config" in run_promtool("check", "config", "prometheus.yml")


def test_every_alert_fires_in_its_unit_test() -> None:
    assert "SUCCESS" in run_promtool("test", "rules", "alerts.test.yml")
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == {rule["alert"] for rule in rules()}, "each alert needs a test where it fires"


def test_the_failures_that_matter_have_an_alert() -> None:
    names = {rule["alert"] for rule in rules()}
    wanted = {
        "VigilCameraOffline",
        "VigilInferenceLagGrowing",
        "VigilConsumerLagGrowing",
        "VigilSinkDeadLetters",
        "VigilTrainingJobFailed",
        "VigilNoEventsFromCamera",
    }
    assert wanted <= names
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_name_only_exported_metrics(exported: set[str]) -> None:
    used = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert used, "the rules name no vigil_ metric"
    assert not used - exported, f"metrics no process exports: {sorted(used - exported)}"


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in panels if p["type"] != "row"]


def test_dashboard_panels_query_exported_metrics(exported: set[str]) -> None:
    panels = dashboard_panels()
    assert len(panels) >= 10
    ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
        exprs = [target["expr"] for target in panel["targets"]]
        used = {name for expr in exprs for name in METRIC.findall(expr)}
        assert used, f"panel {panel['title']!r} queries no vigil_ metric"
        assert not used - exported, f"{panel['title']!r}: unknown {sorted(used - exported)}"


def test_every_process_is_on_the_dashboard(exported: set[str]) -> None:
    queried = {
        name
        for panel in dashboard_panels()
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }
    processes = ("ingest", "inference", "consumer", "trainer", "api", "retention")
    prefixes = {f"vigil_{p}_" for p in processes}
    assert {p for p in prefixes if any(n.startswith(p) for n in queried)} == prefixes
