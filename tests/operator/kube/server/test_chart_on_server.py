"""The chart as rendered, installed with real helm (4 and 3) on a real API server: the CRD from its crds/ is
Established, every object helm made exists, `helm upgrade` changes the Deployment and `helm uninstall`
removes what it made; and the chart's RBAC, asked of the server's own authorizer (SelfSubjectAccessReview
with the chart's ServiceAccount token, and `kubectl auth can-i`), grants the ServiceAccount exactly what the
operator needs (NEEDED), agrees with the offline RBAC model (tests/charts/rbac_check.py) on every request of
the probe matrix, and grants nothing on Secrets anywhere.

Independent of how replicas coordinate (peering, leader election): no kopf.dev or coordination.k8s.io
resource is probed, and rights in the release namespace are probed for Secrets only.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from charts.operator_scenario import operator_requests, run_scenario
from charts.rbac_check import Access, allowed, to_access
from support.control_plane import CHART, install_chart
from support.kube import wait_for

pytestmark = pytest.mark.timeout(300)

CRD_NAME = "rzeroruns.rzero.dev"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")  # rbac_check.to_access
RESOURCES = (  # (group, resource): what the operator touches, and what it must not
    ("rzero.dev", "rzeroruns"), ("rzero.dev", "rzeroruns/status"), ("rzero.dev", "rzeroruns/finalizers"),
    ("batch", "jobs"), ("", "configmaps"), ("", "services"), ("", "pods"), ("", "pods/log"), ("", "pods/exec"),
    ("", "events"), ("events.k8s.io", "events"), ("", "secrets"), ("", "serviceaccounts"),
    ("", "serviceaccounts/token"), ("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apps", "deployments"), ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
)
# What the operator needs, and why (SECURITY.md reviews the same rules). Where runs live:
RUN_NEEDS = {
    ("rzero.dev", "rzeroruns"): ({"get", "list", "watch", "patch"}, "watch runs; kopf's finalizer and annotations"),
    ("rzero.dev", "rzeroruns/status"): ({"get", "patch"}, "status only through the status subresource"),
    ("rzero.dev", "rzeroruns/finalizers"): ({"update"}, "ownerReferences with blockOwnerDeletion on its Jobs"),
    ("batch", "jobs"): ({"get", "list", "watch", "create", "delete"}, "one Job per phase; deleted on stop/suspend"),
    ("", "configmaps"): ({"get", "list", "create", "delete"}, "task documents above 128 KiB; a deleted run's leftover removed"),
    ("", "services"): ({"get", "list", "create", "delete"}, "headless Services for multi-node Jobs"),
    ("", "pods"): ({"get", "list", "watch"}, "termination messages (phase summaries), watched, read-only"),
    ("", "events"): ({"create", "patch", "list"}, "Events on runs; the Job controller's FailedCreate"),
}
# Everywhere (cluster-scoped reads kopf needs):
CLUSTER_NEEDS = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): ({"get", "list", "watch"}, "kopf's resource discovery"),
    ("", "namespaces"): ({"get", "list", "watch"}, "namespaced mode: watched namespaces appearing and going"),
}


def write_values(plane, name: str, values: dict) -> Path:
    path = plane.workdir / f"values-{name}.json"
    path.write_text(json.dumps(values))
    return path


def helm_objects(plane, helm: Path, chart) -> list[dict]:
    """What helm made for the release (`helm get manifest`), parsed."""
    text = plane.tool(helm, "get", "manifest", chart.release, "--namespace", chart.namespace).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def on_server(plane, objects: list[dict], directory: Path) -> list[str]:
    """`kubectl get` of each object: the names the server has (an absent one makes kubectl exit 1)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    result = plane.kubectl("get", "-f", str(directory / "objects.yaml"), "-o", "name", check=False)
    return sorted(result.stdout.split()) if result.returncode == 0 else [f"missing: {result.stderr.strip()}"]


def deployment(plane, chart) -> dict:
    return plane.kube_api().request(
        "GET", f"/apis/apps/v1/namespaces/{chart.namespace}/deployments/{chart.release}-rzero-operator")


def crd_is_the_charts(plane) -> None:
    crd = plane.kube_api().request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}")
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    shipped = yaml.safe_load((CHART / "crds" / f"{CRD_NAME}.yaml").read_text())
    assert crd["spec"]["versions"] == json.loads(json.dumps(shipped["spec"]["versions"]))


# ------------------------------------------------------------------------------------ install and upgrade


@pytest.mark.parametrize("helm_name", ["helm4", "helm3"])
def test_install_upgrade_and_uninstall_with_real_helm(control_plane, real_namespace, kube_tools, helm_name, tmp_path):
    helm = kube_tools.get(helm_name)
    chart = install_chart(control_plane, helm, [real_namespace])
    crd_is_the_charts(control_plane)
    objects = helm_objects(control_plane, helm, chart)
    kinds = sorted((doc["kind"], doc["metadata"].get("namespace", "")) for doc in objects)
    for expected in (("ServiceAccount", chart.namespace), ("Deployment", chart.namespace),
                     ("ClusterRole", ""), ("ClusterRoleBinding", ""), ("RoleBinding", real_namespace)):
        assert expected in kinds, kinds
    assert len(on_server(control_plane, objects, tmp_path / "installed")) == len(objects)
    before = deployment(control_plane, chart)
    pod = before["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{chart.release}-rzero-operator"
    assert pod["containers"][0]["args"][:3] == ["operator", "--namespace", real_namespace]

    values = write_values(control_plane, f"{chart.namespace}-upgrade", {
        "watch": {"namespaces": [real_namespace]}, "metrics": {"port": 9191},
        "extraEnv": [{"name": "RZERO_TEST_MARK", "value": "upgraded"}]})
    control_plane.tool(helm, "upgrade", chart.release, str(CHART), "--namespace", chart.namespace, "-f", str(values),
                       "--wait=false", timeout=180)
    after = deployment(control_plane, chart)
    container = after["spec"]["template"]["spec"]["containers"][0]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert [p["containerPort"] for p in container["ports"]] == [9191]
    assert container["args"][container["args"].index("--metrics-port") + 1] == "9191"
    assert {"name": "RZERO_TEST_MARK", "value": "upgraded"} in container["env"]
    wait_for(lambda: deployment(control_plane, chart).get("status", {}).get("observedGeneration")
             == after["metadata"]["generation"], 30, "the Deployment controller to see the upgrade")

    control_plane.tool(helm, "uninstall", chart.release, "--namespace", chart.namespace, timeout=180)
    cluster_roles = [doc for doc in objects if doc["kind"] == "ClusterRole"]
    wait_for(lambda: on_server(control_plane, cluster_roles, tmp_path / "uninstalled")[0].startswith("missing"), 30,
             "helm uninstall to remove the ClusterRoles")
    crd_is_the_charts(control_plane)  # helm never deletes what crds/ installed


def test_install_watching_all_namespaces_binds_cluster_wide(control_plane, kube_tools, tmp_path):
    helm = kube_tools.get("helm4")
    chart = install_chart(control_plane, helm, [], {"watch": {"allNamespaces": True}})
    crd_is_the_charts(control_plane)
    objects = helm_objects(control_plane, helm, chart)
    # The runs' rights are bound cluster-wide; a RoleBinding may exist only in the release namespace (the
    # operator's own coordination there is not this test's subject).
    runs_bindings = [(doc["kind"], doc["metadata"].get("namespace")) for doc in objects
                     if doc["kind"].endswith("RoleBinding") and doc["roleRef"]["name"].endswith("-runs")]
    assert runs_bindings == [("ClusterRoleBinding", None)]
    assert {doc["metadata"]["namespace"] for doc in objects if doc["kind"] == "RoleBinding"} <= {chart.namespace}
    assert len(on_server(control_plane, objects, tmp_path)) == len(objects)
    assert "--all-namespaces" in deployment(control_plane, chart)["spec"]["template"]["spec"]["containers"][0]["args"]
    elsewhere = control_plane.new_namespace("anywhere")
    granted = granted_on_server(control_plane, chart, [elsewhere, None])
    expected = {(a.verb, a.group, a.resource, a.namespace) for a in probes([elsewhere, None])
                if a.verb in needs_of(all_namespaces=True).get((a.group, a.resource), ())}
    assert {(a.verb, a.group, a.resource, a.namespace) for a in granted} == expected
    assert_no_secrets(control_plane, chart, [elsewhere, chart.namespace])


# ------------------------------------------------------------------------------------------------ RBAC


def needs_of(*, all_namespaces: bool, where_runs_live: bool = True) -> dict[tuple[str, str], set[str]]:
    cluster = {key: verbs for key, (verbs, _) in CLUSTER_NEEDS.items()
               if not (all_namespaces and key == ("", "namespaces"))}
    runs = {key: verbs for key, (verbs, _) in RUN_NEEDS.items()} if where_runs_live else {}
    return {key: cluster.get(key, set()) | runs.get(key, set()) for key in cluster.keys() | runs.keys()}


def probes(scopes: list[str | None]) -> list[Access]:
    return [Access(verb, group, resource, scope) for scope in scopes for group, resource in RESOURCES
            for verb in VERBS]


def server_allows(api, access: Access) -> bool:
    """The API server's RBAC decision for the token's identity (SelfSubjectAccessReview)."""
    resource, _, sub = access.resource.partition("/")
    attributes = {"verb": access.verb, "group": access.group, "resource": resource, "subresource": sub,
                  "namespace": access.namespace or ""}
    review = api.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes}})
    return bool(review["status"].get("allowed"))


def granted_on_server(plane, chart, scopes: list[str | None]) -> set[Access]:
    api = plane.kube_api(chart.kubeconfig)
    matrix = probes(scopes)
    with ThreadPoolExecutor(4) as pool:
        return {access for access, ok in zip(matrix, pool.map(lambda a: server_allows(api, a), matrix)) if ok}


def assert_no_secrets(plane, chart, namespaces: list[str]) -> None:
    """`kubectl auth can-i` as the ServiceAccount: no verb on Secrets, and no wildcard rule, in any of them."""
    for namespace in namespaces:
        listed = plane.kubectl("auth", "can-i", "--list", "-n", namespace, "--as", chart.username).stdout
        rows = [line.split()[0] for line in listed.splitlines()[1:] if line.strip()]
        assert not [row for row in rows if row.split(".")[0] in ("secrets", "*")], listed
        denied = plane.kubectl("auth", "can-i", "get", "secrets", "-n", namespace, "--as", chart.username,
                               check=False)
        assert (denied.returncode, denied.stdout.strip()) == (1, "no")


@pytest.fixture
def namespaced_chart(control_plane, real_namespace, kube_tools):
    helm = kube_tools.get("helm4")
    chart = install_chart(control_plane, helm, [real_namespace])
    return chart, helm_objects(control_plane, helm, chart)


def test_the_charts_rbac_grants_exactly_what_the_operator_needs(control_plane, real_namespace, namespaced_chart):
    chart, objects = namespaced_chart
    elsewhere = control_plane.new_namespace("unwatched")
    scopes = [real_namespace, elsewhere, None]
    granted = granted_on_server(control_plane, chart, scopes)
    expected = {Access(a.verb, a.group, a.resource, a.namespace) for a in probes(scopes)
                if a.verb in needs_of(all_namespaces=False, where_runs_live=a.namespace == real_namespace).get(
                    (a.group, a.resource), ())}
    assert sorted(map(str, granted - expected)) == [], "granted beyond what the operator needs"
    assert sorted(map(str, expected - granted)) == [], "needed but not granted"
    # The offline model (test_chart_rbac.py's judge of the rendered chart) decides every probe as the server.
    service_account = (chart.namespace, f"{chart.release}-rzero-operator")
    model = {a for a in probes(scopes) if allowed(a, objects, service_account)}
    assert model == granted


def test_the_charts_rbac_grants_nothing_on_secrets_anywhere(control_plane, real_namespace, namespaced_chart):
    chart, _ = namespaced_chart
    api = control_plane.kube_api(chart.kubeconfig)
    for namespace in (real_namespace, chart.namespace, None):
        assert not [verb for verb in VERBS if server_allows(api, Access(verb, "", "secrets", namespace))]
    assert_no_secrets(control_plane, chart, [real_namespace, chart.namespace])


def test_every_call_the_operator_makes_is_in_what_it_needs(kube_emulator, job_driver, tmp_path):
    """The operator's own requests in a short scenario (kmock; run on a real server in test_run_on_server.py
    with 0 Forbidden) are all in NEEDED: the table is what the operator does, not a copy of the chart."""
    run_scenario(kube_emulator, job_driver, tmp_path)
    needs = needs_of(all_namespaces=False)
    probed = set(RESOURCES)
    made = {a for r in operator_requests(kube_emulator) if (a := to_access(r.method, r.path, r.query))}
    assert len(made) > 5
    outside = sorted(str(a) for a in made if (a.group, a.resource) in probed
                     and a.verb not in needs.get((a.group, a.resource), ()))
    assert outside == []
