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
        "patch", "rzero.dev", "rzeroruns/status", "ns", "r")
    assert to_access("GET", "/api/v1/namespaces", {}) == Access("list", "", "namespaces", None)
    assert to_access("GET", "/api/v1/namespaces/ns", {}) == Access("get", "", "namespaces", None, "ns")
    assert to_access("DELETE", "/api/v1/namespaces/ns/configmaps/c", {}) == Access("delete", "", "configmaps", "ns", "c")
    assert to_access("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", {}) == Access(
        "update", "coordination.k8s.io", "leases", "ns", "l")
    assert to_access("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases", {}).name is None
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
    manifests = render_chart({"watch": watch})
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


def test_leader_election_may_create_leases_but_read_and_renew_only_its_own():
    manifests = render_chart({})
    ns, lease = RELEASE["Namespace"], "rzero-rzero-operator"
    assert allowed(Access("create", "coordination.k8s.io", "leases", ns), manifests, SERVICE_ACCOUNT)
    for verb in ("get", "update"):
        assert allowed(Access(verb, "coordination.k8s.io", "leases", ns, lease), manifests, SERVICE_ACCOUNT)
        assert not allowed(Access(verb, "coordination.k8s.io", "leases", ns, "kube-scheduler"), manifests,
                           SERVICE_ACCOUNT)
    for verb in ("list", "watch", "patch", "delete"):
        assert not allowed(Access(verb, "coordination.k8s.io", "leases", ns, lease), manifests, SERVICE_ACCOUNT)
    assert not allowed(Access("get", "coordination.k8s.io", "leases", "team-a", lease),
                       render_chart({"watch": {"namespaces": ["team-a"]}}), SERVICE_ACCOUNT)
    assert [a for a in render_chart({"leaderElection": {"enabled": False}}) if "leader" in a["metadata"]["name"]] == []


def test_the_chart_no_longer_ships_kopf_peering():
    for values in ({}, {"watch": {"allNamespaces": True}}, {"replicaCount": 3}):
        manifests = render_chart(values)
        assert not [doc for doc in manifests if doc["apiVersion"].startswith("kopf.dev/")]
        rules = [rule for doc in manifests if doc["kind"] in ("ClusterRole", "Role") for rule in doc["rules"]]
        assert not [rule for rule in rules if "kopf.dev" in rule["apiGroups"]]


def test_the_operator_takes_and_renews_only_the_lease_the_chart_names(operator_accesses):
    leases = {a for a in operator_accesses if a.resource == "leases"}
    ns, name = RELEASE["Namespace"], "rzero-rzero-operator"
    assert Access("update", "coordination.k8s.io", "leases", ns, name) in leases  # renewals (and the release)
    assert leases <= {Access("create", "coordination.k8s.io", "leases", ns),
                      Access("get", "coordination.k8s.io", "leases", ns, name),
                      Access("update", "coordination.k8s.io", "leases", ns, name)}
