"""What the run cache relies on, on a real API server: a status patch that names a resourceVersion applies only
to that version of the run (the reconciler writes a status decided from its cache that way)."""

from __future__ import annotations

import pytest

from support.kube import tiny_spec

from rzero_operator.kube.client import KubeError

pytestmark = pytest.mark.timeout(120)


def test_a_status_patch_naming_an_older_resource_version_is_refused_with_409(control_plane, rzero_crd,
                                                                              real_namespace, tmp_path):
    api = control_plane.kube_api()
    api.request("POST", f"/apis/rzero.dev/v1alpha1/namespaces/{real_namespace}/rzeroruns", body={
        "apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "demo"},
        "spec": tiny_spec(tmp_path)})
    read = api.get_run(real_namespace, "demo")["metadata"]["resourceVersion"]
    written = api.patch_run_status(real_namespace, "demo", {"phase": "Pending"}, resource_version=read)
    assert written["status"]["phase"] == "Pending" and written["metadata"]["resourceVersion"] != read
    with pytest.raises(KubeError) as refused:  # the run changed since `read`: the write is refused, not merged
        api.patch_run_status(real_namespace, "demo", {"phase": "Running"}, resource_version=read)
    assert refused.value.conflict
    assert api.get_run(real_namespace, "demo")["status"]["phase"] == "Pending"
    api.patch_run_status(real_namespace, "demo", {"phase": "Running"})  # without one: applied as before
    assert api.get_run(real_namespace, "demo")["status"]["phase"] == "Running"
