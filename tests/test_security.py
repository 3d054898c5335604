"""Security properties of the running operator: no secret value reaches status, events, logs or any request
it sends; it never reads Secrets; the control plane imports no ML library."""

import json
import logging
import subprocess
import sys

import pytest

from charts.operator_scenario import operator_requests, run_scenario

SECRET_VALUE = "s3cr3t-V4LUE-that-must-never-leak-8f2c"
ACCESS_KEY = "AKIA-LEAK-CHECK-1234"


@pytest.mark.timeout(120)
def test_no_secret_value_appears_in_status_events_logs_or_requests(kube_emulator, kube_api, job_driver, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    # The Secret exists in the run's namespace, as on a cluster; the run references it by name only.
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds", "namespace": job_driver.namespace},
              "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_VALUE}}
    job_driver.api.request("POST", f"/api/v1/namespaces/{job_driver.namespace}/secrets", body=secret)
    storage = {"uri": "s3://bucket/runs", "endpoint": "http://minio:9000", "secretRef": {"name": "s3-creds"}}
    run_scenario(kube_emulator, job_driver, tmp_path, {"storage": storage})

    sent = operator_requests(kube_emulator)
    assert any(r.path.endswith("/status") for r in sent), "the scenario should have written status"
    assert any(r.path.endswith("/events") and r.method == "POST" for r in sent), "the scenario should have posted events"
    assert any(r.path.endswith("/jobs") and r.method == "POST" for r in sent)
    for request in sent:
        assert "/secrets" not in request.path, f"the operator read a Secret: {request.method} {request.path}"
        body = json.dumps(request.body, default=str)
        assert SECRET_VALUE not in body and ACCESS_KEY not in body, f"{request.method} {request.path} carries the secret"
    jobs = [r.body for r in sent if r.path.endswith("/jobs") and r.method == "POST"]
    env = {e["name"]: e for e in jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"name": "AWS_SECRET_ACCESS_KEY",
                                            "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}}}
    logged = "\n".join(record.getMessage() + repr(record.__dict__.get("args")) for record in caplog.records)
    assert logged and SECRET_VALUE not in logged and ACCESS_KEY not in logged


def test_the_control_plane_imports_no_ml_library():
    code = (
        "import sys, importlib, pkgutil, rzero_operator\n"
        "for m in pkgutil.walk_packages(rzero_operator.__path__, 'rzero_operator.'):\n"
        "    importlib.import_module(m.name)\n"
        "import rzero_worker.task, rzero_worker.storage, rzero_worker.summary\n"
        "print(sorted(n for n in ('torch', 'transformers', 'trl', 'vllm') if n in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
