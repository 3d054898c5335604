"""On a real API server: the generated CRD installs, every CEL rule fits the server's cost budget, and the
server shows what `kubectl get rzr` users see. kmock and cel-python model none of this."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from rzero_operator.api.crd import build_crd, render_crd_yaml

from support.cel_bounds import unbounded_under_rules

pytestmark = pytest.mark.timeout(300)


def dry_run_create(control_plane, crd: dict, tmp_path) -> str:
    """The server's verdict on creating `crd` ('' when accepted, else its message). The copy is renamed into a
    group of its own, so the verdict is a create's even where the real CRD is installed already."""
    crd = copy.deepcopy(crd)
    crd["spec"]["group"] = "costcheck.rzero.dev"
    crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.costcheck.rzero.dev"
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    result = control_plane.kubectl("create", "--dry-run=server", "-f", str(path), check=False)
    return "" if result.returncode == 0 else result.stderr


def test_the_generated_crd_is_accepted_by_the_api_server(control_plane, tmp_path):
    crd = yaml.safe_load(render_crd_yaml())
    assert dry_run_create(control_plane, crd, tmp_path) == ""


def test_the_servers_cost_verdict_agrees_with_the_bounds_check(control_plane, tmp_path):
    """Remove one bound the cost estimate depends on: the server refuses the CRD naming the rule, and the
    offline bounds check (what the fast unit test asserts on every build) names the same place."""
    crd = build_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    benchmarks = schema["properties"]["spec"]["properties"]["evaluation"]["properties"]["benchmarks"]
    unbounded = copy.deepcopy(crd)
    del unbounded["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "evaluation"]["properties"]["benchmarks"]["maxItems"]
    verdict = dry_run_create(control_plane, unbounded, tmp_path)
    assert "estimated rule cost exceeds budget" in verdict
    assert "properties[evaluation].properties[benchmarks].items.x-kubernetes-validations" in verdict
    flagged = unbounded_under_rules(unbounded["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert "$.spec.evaluation.benchmarks" in flagged
    assert benchmarks["maxItems"] and unbounded_under_rules(schema) == []


def test_installed_crd_serves_printer_columns_short_name_and_explain(control_plane, real_namespace, tmp_path):
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(render_crd_yaml())
    control_plane.apply_crd(crd_file)
    run = {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "columns"},
           "spec": {"model": "builtin:smollm2-135m-instruct", "storage": {"uri": "s3://runs/rzero"}}}
    control_plane.kubectl("apply", "-n", real_namespace, "-f", "-", input=json.dumps(run))
    table = control_plane.kubectl("get", "rzr", "-n", real_namespace).stdout.splitlines()
    header = table[0].split()
    assert header[:4] == ["NAME", "PHASE", "ITERATION", "STAGE"], table
    assert table[1].split()[0] == "columns"
    explain = control_plane.kubectl("explain", "rzeroruns.spec.labeling.band").stdout
    assert "paper" in explain and "code" in explain
    # The server defaulted the spec from the schema, as `rzero validate` does offline.
    stored = json.loads(control_plane.kubectl("get", "rzr", "columns", "-n", real_namespace, "-o", "json").stdout)
    assert stored["spec"]["labeling"]["band"] == "paper"
