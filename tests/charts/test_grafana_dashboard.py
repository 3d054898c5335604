"""The Grafana dashboard (charts/rzero-operator/dashboards/rzero.json): it parses, every PromQL expression names
only metrics the operator exports (read from the operator's own registry), its panels tile the grid, and the
chart renders it as a sidecar ConfigMap only when `grafanaDashboard.enabled`."""

import json
import re

import pytest

from rzero_operator.kube.metrics import OperatorMetrics

from .helm_render import CHART, by_kind, lint, render_chart

DASHBOARD = CHART / "dashboards" / "rzero.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# What may stand in PromQL besides metric names: operators, aggregations, modifiers (functions are followed by "(").
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def exported_series() -> set[str]:
    """The series names a scrape of the operator shows, from its registry (suffixes as the exposition adds them)."""
    names = set()
    for family in OperatorMetrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def expressions(body: dict) -> list[str]:
    exprs = [target["expr"] for panel in body["panels"] for target in panel.get("targets", [])]
    exprs += [var["query"]["query"] for var in body["templating"]["list"] if var["type"] == "query"]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Identifiers in metric-name position: strings, label matchers, label lists, ranges, Grafana variables,
    numbers, functions and keywords taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\blabel_values\s*\(([^,]*),[^)]*\)", r"\1", text)  # Grafana's: label_values(metric, label)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if match.group() not in KEYWORDS and not following.startswith("("):
            names.add(match.group())
    return names


def test_the_dashboard_parses_and_uses_the_prometheus_data_source_variable():
    body = dashboard()
    assert body["uid"] and body["title"] == "rzero"
    source = body["templating"]["list"][0]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for panel in body["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_expression_names_only_metrics_the_operator_exports():
    exported = exported_series()
    assert {"rzero_runs", "rzero_phase_retries_total", "rzero_phase_duration_seconds_bucket"} <= exported
    for expr in expressions(dashboard()):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} names {sorted(names - exported)}, which the operator does not export"


def test_the_name_check_catches_a_misspelt_metric():
    misspelt = 'sum by (phase) (increase(rzero_phase_retry_total{phase=~"$p"}[5m]))'
    assert metric_names(misspelt) == {"rzero_phase_retry_total"}
    quantile = "histogram_quantile(0.95, sum by (le) (rate(rzero_reconcile_seconds_bucket[$__rate_interval])))"
    assert metric_names(quantile) == {"rzero_reconcile_seconds_bucket"}


def test_the_dashboard_covers_what_issue_21_asks_for():
    used = set().union(*map(metric_names, expressions(dashboard())))
    for metric in ("rzero_runs", "rzero_iteration", "rzero_iterations", "rzero_phase_duration_seconds_bucket",
                   "rzero_phase_retries_total", "rzero_phase_failures_total", "rzero_label_accuracy",
                   "rzero_label_accuracy_lower", "rzero_best_score", "rzero_storage_bytes", "rzero_awaiting_approval"):
        assert metric in used, metric


def test_panels_have_unique_ids_and_tile_the_24_column_grid_without_overlapping():
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    taken = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] >= 1, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        assert panel["type"] == "row" or panel["targets"], panel["title"]


def dashboards(values: dict) -> list[dict]:
    return [cm for cm in by_kind(render_chart(values), "ConfigMap") if cm["metadata"]["name"].endswith("-dashboard")]


def test_without_the_value_the_chart_renders_no_dashboard():
    assert dashboards({}) == []


def test_with_the_value_the_chart_renders_a_configmap_for_grafanas_sidecar_holding_the_dashboard():
    (configmap,) = dashboards({"grafanaDashboard": {"enabled": True}})
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "rzero-system"
    assert json.loads(configmap["data"]["rzero.json"]) == dashboard()


def test_the_sidecar_label_namespace_and_folder_annotation_are_configurable():
    values = {"grafanaDashboard": {"enabled": True, "label": "grafana.example.com/dashboard", "labelValue": "rzero",
                                   "namespace": "monitoring", "annotations": {"grafana_folder": "ML"}}}
    (configmap,) = dashboards(values)
    assert configmap["metadata"]["labels"]["grafana.example.com/dashboard"] == "rzero"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "ML"}
    assert "0 chart(s) failed" in lint(values)


@pytest.mark.parametrize("bad", [{"enabled": "yes"}, {"enabled": True, "label": "no spaces"}, {"labelValue": 1}])
def test_the_schema_refuses_mistyped_dashboard_values(bad):
    with pytest.raises(AssertionError, match="lint failed"):
        lint({"grafanaDashboard": bad})


def test_the_service_monitor_keeps_the_runs_namespace_label_the_dashboard_filters_on():
    (monitor,) = by_kind(render_chart({"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


# ------------------------------------------- every query, run by a real Prometheus against a live operator registry

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$namespace": ".*", "$run": ".*"}


def populated_metrics() -> OperatorMetrics:
    """An operator's metrics after one run did a little of everything the dashboard shows."""
    from datetime import datetime, timedelta, timezone

    from rzero_operator.api.oversight import BestIteration, PendingApproval
    from rzero_operator.api.status import CurrentAttempt, IterationRecord, RZeroRunStatus

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    status = RZeroRunStatus(
        phase="Running", stage="AwaitingApproval", iteration=2, progress="2/3", storage_bytes=12_345,
        current=CurrentAttempt(iteration=2, phase="label", attempt=1, name="x", started_at=now - timedelta(minutes=5)),
        iteration_history=[IterationRecord(iteration=1, label_accuracy=0.8, label_accuracy_ci95=[0.7, 0.9])],
        best_iteration=BestIteration(iteration=1, score=0.42, solver_checkpoint="iter-001/solver"),
        approval=PendingApproval(gate="2", iteration=2, after="label"),
    )
    metrics = OperatorMetrics()
    metrics.leader.set(1)
    metrics.record_start("label")
    metrics.track_run(("ml", "demo"), status)
    events = [("Normal", "PhaseSucceeded", ""), ("Warning", "PhaseRetry", ""), ("Warning", "GuardTripped", "(pause)"),
              ("Normal", "Approved", ""), ("Warning", "RunFailed", "")]
    metrics.record_events(events, status, now)
    metrics.reconcile_seconds.observe(0.05)
    metrics.reconcile_errors.inc()
    return metrics


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prometheus_query(port: int, expr: str) -> dict:
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 400: the expression does not parse
        return json.loads(error.read())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus (Debian's `prometheus` package) scraping a live OperatorMetrics every second."""
    import shutil
    import subprocess
    import time

    binary = shutil.which("prometheus")
    if not binary:
        pytest.skip("prometheus is not installed (Debian package `prometheus`)")
    metrics, target, port = populated_metrics(), free_port(), free_port()
    metrics.serve(target, addr="127.0.0.1")
    home = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: rzero\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n")
    argv = [binary, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # two scrapes, so increase() and rate() have something to work on
            try:
                result = prometheus_query(port, "count_over_time(rzero_operator_leader[1h])")["data"]["result"]
                if result and float(result[0]["value"][1]) >= 3:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus did not scrape the operator's metrics within 60 s")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def with_grafana_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.mark.parametrize("panel", [p for p in dashboard()["panels"] if p["type"] != "row"], ids=lambda p: p["title"])
def test_every_panel_query_runs_on_prometheus_and_finds_the_operators_series(prometheus, panel):
    for target in panel["targets"]:
        answer = prometheus_query(prometheus, with_grafana_variables(target["expr"]))
        assert answer["status"] == "success", f"{target['expr']}: {answer.get('error')}"
        assert answer["data"]["result"], f"{panel['title']}: {target['expr']} found no series"
