"""Render the chart the way `helm template` would, for the subset of Helm our templates use.

`render_chart(values={...})` merges the overrides into values.yaml (maps deep-merged, everything else
replaced, as Helm does), renders every template with .Values/.Release/.Chart, and returns the parsed
manifests. NOTES.txt is rendered too (`render_notes`). No helm binary is needed or used.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .gofunctions import FUNCTIONS
from .gotemplate import Node, Renderer, Scope, TemplateError, lex, parse

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rzero-operator"
RELEASE = {"Name": "rzero", "Namespace": "rzero-system", "Service": "Helm", "IsInstall": True, "IsUpgrade": False}


def template_sources(chart: Path = CHART) -> dict[str, str]:
    """Every file under templates/ that Helm renders or loads (.yaml, .tpl, NOTES.txt)."""
    return {
        path.relative_to(chart).as_posix(): path.read_text()
        for path in sorted((chart / "templates").iterdir())
        if path.suffix in (".yaml", ".yml", ".tpl", ".txt")
    }


def compile_chart(chart: Path = CHART) -> tuple[dict[str, list[Node]], dict[str, list[Node]]]:
    """Parse all templates: (trees by file, named defines). Raises TemplateError on bad syntax."""
    defines: dict[str, list[Node]] = {}
    trees = {name: parse(lex(text, name), FUNCTIONS, defines) for name, text in template_sources(chart).items()}
    return trees, defines


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_values(overrides: dict | None = None, chart: Path = CHART) -> dict:
    return deep_merge(yaml.safe_load((chart / "values.yaml").read_text()), overrides or {})


def _context(values: dict, release: dict, chart: Path) -> dict[str, Any]:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    chart_info = {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")}
    return {"Values": values, "Release": release, "Chart": chart_info, "Capabilities": {}}


def render_files(values: dict | None = None, release: dict | None = None, chart: Path = CHART) -> dict[str, str]:
    """Rendered text of each template file (partials `_*.tpl` excluded, as Helm does)."""
    trees, defines = compile_chart(chart)
    context = _context(chart_values(values, chart), {**RELEASE, **(release or {})}, chart)
    renderer = Renderer(defines, FUNCTIONS)
    return {
        name: renderer.render(tree, context, Scope(None, **{"$": context}))
        for name, tree in trees.items()
        if not Path(name).name.startswith("_")
    }


def render_chart(values: dict | None = None, release: dict | None = None, chart: Path = CHART) -> list[dict]:
    """All manifests (NOTES.txt excluded), parsed; empty documents dropped."""
    manifests = []
    for name, text in render_files(values, release, chart).items():
        if name.endswith("NOTES.txt"):
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as error:
            raise TemplateError(f"{name} renders to invalid YAML: {error}\n{text}") from error
        manifests += [doc for doc in documents if doc]
    return manifests


def render_notes(values: dict | None = None, release: dict | None = None, chart: Path = CHART) -> str:
    return render_files(values, release, chart)["templates/NOTES.txt"]


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [doc for doc in manifests if doc.get("kind") == kind]
