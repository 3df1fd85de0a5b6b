"""The Prometheus config and alert rules are well formed and name only what we export.

promtool is not installed here: the YAML structure is checked, and every metric an alert
expression reads is compared with what the API's /metrics exports
(tests/integration/test_metrics.py scrapes a real one with `alert_metrics`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from common import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deployments" / "prometheus"
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset"}
# The API's /metrics gauges, read on scrape (tests/integration/test_metrics.py checks a real
# page holds every one an alert reads).
API_GAUGES = {"assignment_queue_messages", "assignment_process_up", "assignment_waiting_events",
              "assignment_live_assignments", "assignment_events_breaching_target",
              "assignment_available_operators", "assignment_outbox_unfinished"}
ALERTS_REQUIRED = {"DeadLetterQueueGrowing", "EventsBreachingResponseTarget",
                   "ProcessMissingOrStale", "WorkWaitingNobodyAvailable"}


def rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels, matchers and ranges
    removed)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(on|by|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b[a-zA-Z_]\w*\s*\(", "(", expr)
    return set(re.findall(r"\b[a-zA-Z_:][\w:]*\b", expr)) - PROMQL_WORDS


def alert_metrics() -> set[str]:
    """Every metric name read by an alert expression."""
    return set().union(*(metric_names(rule["expr"]) for rule in rules()))


def exported_by_processes() -> set[str]:
    """Sample names the processes' own counters and histograms can produce."""
    import common.api.metrics  # noqa: F401 - registers the API's counters

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    return {family.name + suffix for family in REGISTRY.collect()
            for suffix in suffixes.get(family.type, ("",))}


def test_every_alert_has_an_expression_a_duration_a_severity_and_a_summary():
    found = rules()
    assert {rule["alert"] for rule in found} >= ALERTS_REQUIRED
    for rule in found:
        assert rule["expr"].strip() and re.fullmatch(r"\d+[smh]", rule["for"]), rule
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule
        assert rule["annotations"]["summary"], rule


def test_alerts_read_only_metrics_we_export():
    exported = API_GAUGES | {"up"}
    assert alert_metrics() <= exported, alert_metrics() - exported


def test_the_dashboard_reads_only_metrics_we_export():
    dashboard = json.loads((ROOT / "deployments" / "grafana" / "dashboards"
                            / "event-assignment.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    read = set().union(*(metric_names(e) for e in exprs))
    assert read <= exported_by_processes() | API_GAUGES, read - exported_by_processes()


def test_prometheus_scrapes_the_api_and_each_consumer_on_its_port():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["api"]["static_configs"][0]["targets"] == ["api:3000"]
    for process, port in metrics.PORTS.items():
        (sd,) = jobs[process]["dns_sd_configs"]
        assert sd["names"] == [process] and sd["port"] == port


def test_compose_runs_prometheus_only_under_the_monitoring_profile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert "./deployments/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert set(metrics.PORTS) <= set(compose["services"])
