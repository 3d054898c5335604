"""The chart's RBAC covers every API call the real operator makes (taken from the emulator's request log of a
real run), and grants nothing the operator must not have."""

import pytest

from .helm_render import RELEASE, by_kind, render_chart
from .operator_scenario import operator_requests, run_scenario
from .rbac_check import Access, allowed, to_access

SERVICE_ACCOUNT = (RELEASE["Namespace"], "rzero-rzero-operator")


@pytest.fixture
def operator_accesses(kube_emulator, job_driver, tmp_path) -> set[Access]:
    run_scenario(kube_emulator, job_driver, tmp_path)
    seen = operator_requests(kube_emulator)
    assert len(seen) > 10, "the scenario should have made the operator talk to the API server"
    return {access for request in seen if (access := to_access(request.method, request.path, request.query))}


def test_request_paths_map_to_rbac_verbs_and_resources():
    assert to_access("GET", "/apis/batch/v1/namespaces/ns/jobs", {"watch": "true"}) == Access("watch", "batch", "jobs", "ns")
    assert to_access("GET", "/apis/batch/v1/namespaces/ns/jobs", {}) == Access("list", "batch", "jobs", "ns")
    assert to_access("PATCH", "/apis/rzero.dev/v1alpha1/namespaces/ns/rzeroruns/r/status", {}) == Access(
        "patch", "rzero.dev", "rzeroruns/status", "ns")
    assert to_access("GET", "/api/v1/namespaces", {}) == Access("list", "", "namespaces", None)
    assert to_access("GET", "/api/v1/namespaces/ns", {}) == Access("get", "", "namespaces", None)
    assert to_access("DELETE", "/api/v1/namespaces/ns/configmaps/c", {}) == Access("delete", "", "configmaps", "ns")
    assert to_access("GET", "/apis/rzero.dev/v1alpha1", {}) is None


def test_a_role_binding_grants_nothing_outside_its_namespace():
    manifests = render_chart({"watch": {"namespaces": ["team-a"]}})
    assert allowed(Access("create", "batch", "jobs", "team-a"), manifests, SERVICE_ACCOUNT)
    assert not allowed(Access("create", "batch", "jobs", "team-b"), manifests, SERVICE_ACCOUNT)
    assert not allowed(Access("list", "batch", "jobs", None), manifests, SERVICE_ACCOUNT)


NAMESPACED_IN_EMULATOR = pytest.mark.xfail(
    strict=True,
    reason="in kmock 0.8 the operator started with namespaces=[ns] still lists/watches rzeroruns and jobs "
    "cluster-wide (kmock's core discovery reports groupVersion '/v1', so kopf never sees the namespaces "
    "resource); on a real cluster kopf watches per namespace. Remove this mark once the log shows that.",
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "watch",
    [pytest.param({"namespaces": ["rzero-test"]}, marks=NAMESPACED_IN_EMULATOR), {"allNamespaces": True}],
    ids=["namespaced", "cluster"],
)
def test_rbac_allows_every_call_the_operator_makes(operator_accesses, watch):
    manifests = render_chart({"watch": watch})
    denied = sorted(str(access) for access in operator_accesses if not allowed(access, manifests, SERVICE_ACCOUNT))
    assert denied == [], f"the chart's RBAC would forbid: {denied}"


def test_status_is_written_only_through_the_status_subresource(operator_accesses):
    writes = {a.resource for a in operator_accesses if a.group == "rzero.dev" and a.verb in ("patch", "update")}
    assert "rzeroruns/status" in writes
    assert not any(a.verb == "update" and a.resource == "rzeroruns" for a in operator_accesses)


@pytest.mark.parametrize("watch", [{}, {"allNamespaces": True}, {"namespaces": ["a", "b"]}])
def test_the_operator_gets_no_secrets_no_pod_writes_and_no_wildcards(watch):
    manifests = render_chart({"watch": watch, "peering": {"enabled": True}})
    rules = [rule for doc in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role") for rule in doc["rules"]]
    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "secrets" not in rule["resources"], "Jobs reference secrets by name; the operator never reads them"
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    for verb in ("create", "patch", "update", "delete"):
        for namespace in ("a", "rzero-system", None):
            assert not allowed(Access(verb, "", "pods", namespace), manifests, SERVICE_ACCOUNT)
            assert not allowed(Access(verb, "rzero.dev", "rzeroruns", namespace), manifests, SERVICE_ACCOUNT) or verb == "patch"


def test_peering_rights_follow_the_peering_mode():
    namespaced = render_chart({"peering": {"enabled": True}})
    clusterwide = render_chart({"peering": {"enabled": True}, "watch": {"allNamespaces": True}})
    off = render_chart({})
    ns = RELEASE["Namespace"]
    assert allowed(Access("patch", "kopf.dev", "kopfpeerings", ns), namespaced, SERVICE_ACCOUNT)
    assert allowed(Access("patch", "kopf.dev", "clusterkopfpeerings", None), clusterwide, SERVICE_ACCOUNT)
    assert not allowed(Access("patch", "kopf.dev", "kopfpeerings", ns), off, SERVICE_ACCOUNT)
    assert [doc["kind"] for doc in namespaced if doc["kind"].endswith("KopfPeering")] == ["KopfPeering"]
    assert [doc["kind"] for doc in clusterwide if doc["kind"].endswith("KopfPeering")] == ["ClusterKopfPeering"]
