"""The shipped alert rules and Grafana dashboard, offline: every query parses, names metrics of
ours, and the panels cover the pipeline's health. (Whether each name exists in a real scrape is
``tests/integration/test_monitoring.py``.)"""

from __future__ import annotations

import json

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tests.monitoring import (
    MONITORING,
    alert_expressions,
    dashboard_expressions,
    exposed_names,
    metric_names,
)

QUERIES = {**alert_expressions(), **dashboard_expressions()}


@pytest.mark.parametrize("where", sorted(QUERIES))
def test_every_query_parses_and_names_metrics_of_ours(where: str) -> None:
    names = metric_names(QUERIES[where])
    assert names, f"{where}: no metric"
    assert all(n.startswith(("genesys_pipeline_", "process_")) for n in names), names


def test_metric_names_finds_every_selector_and_refuses_bad_promql() -> None:
    query = (
        'sum(rate(a_total[$__rate_interval])) / ignoring(x) b{c="d"} '
        'or absent({__name__="e_info"}) > histogram_quantile(0.9, f_bucket)'
    )
    assert metric_names(query) == {"a_total", "b", "e_info", "f_bucket"}
    with pytest.raises(ValueError, match=r"."):
        metric_names("sum(rate(a_total[5m])")


def test_exposed_names_include_labelled_metrics_without_samples_yet() -> None:
    registry = CollectorRegistry()
    Counter("x_things_total", "things", ["kind"], registry=registry)  # no child yet
    Histogram("x_wait_seconds", "wait", registry=registry)
    names = exposed_names(generate_latest(registry).decode())
    assert {"x_things_total", "x_wait_seconds_bucket", "x_wait_seconds_count"} <= names
    assert "x_other_total" not in names


def test_every_alert_has_a_severity_and_a_summary() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_the_dashboard_covers_the_pipelines_health() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    text = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in (
        "genesys_pipeline_frames_total",
        "genesys_pipeline_records_total",
        "genesys_pipeline_dead_letters_total",
        "genesys_pipeline_gaps_total",
        "genesys_pipeline_channels_live",
        "genesys_pipeline_delivery_latency_seconds_bucket",
        "genesys_pipeline_freshness_stage_latency_seconds_bucket",
        "genesys_pipeline_dashboard_pushes_total",
    ):
        assert name in text, name
    assert "by (family, le)" in text  # freshness p95 per family
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
