"""The Dockerfile (no Docker engine here, so it is parsed): two targets, non-root, no piped installers, and
the worker's ML pins are exactly pyproject.toml's."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, args in instructions():
        if keyword == "FROM":
            current = args.split()[-1] if " AS " in args.upper() else args
            found[current] = []
        elif current is not None:
            found[current].append((keyword, args))
    return found


def test_there_are_operator_and_worker_targets():
    assert {"operator", "worker"} <= set(stages())


def test_every_target_runs_as_a_non_root_user_with_the_rzero_entrypoint():
    for name, body in stages().items():
        users = [args for keyword, args in body if keyword == "USER"]
        assert users, f"{name}: no USER"
        assert users[-1].split(":")[0] not in ("0", "root"), f"{name}: last USER is root"
        entrypoints = [args for keyword, args in body if keyword == "ENTRYPOINT"]
        assert entrypoints[-1] == '["rzero"]', f"{name}: ENTRYPOINT must be the exec form [\"rzero\"]"


def test_no_piped_installers_and_no_secrets_baked_in():
    text = (REPO / "Dockerfile").read_text()
    assert not re.search(r"(curl|wget)[^\n|]*\|\s*(ba)?sh", text)
    assert not re.search(r"(?i)(password|secret|token|aws_access_key_id)\s*=", text)


def test_the_operator_image_installs_the_core_package_only():
    runs = " ".join(args for keyword, args in stages()["operator"] if keyword == "RUN")
    assert "pip install ." in runs
    assert "torch" not in runs and "[worker" not in runs


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["optional-dependencies"]["worker"] + project["optional-dependencies"]["vllm"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==([^;\s]+)", requirement)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_the_worker_image_installs_pyproject_extras_with_torch_pinned_the_same():
    runs = " ".join(args for keyword, args in stages()["worker"] if keyword == "RUN")
    assert "'.[worker,vllm,wandb,mlflow]'" in runs  # spec.tracking's clients too
    pins = pyproject_pins()
    assert pins["torch"] == "2.13.0" and pins["vllm"] == "0.31.0" and pins["transformers"] == "5.17.0"
    for package, version in re.findall(r"\b([a-z][a-z0-9_-]*)==([0-9][^\s'\"]*)", runs):
        assert pins.get(package) == version, f"Dockerfile pins {package}=={version}, pyproject.toml {pins.get(package)}"


def test_docs_list_the_same_versions():
    doc = (REPO / "docs" / "images.md").read_text()
    for package, version in pyproject_pins().items():
        assert f"{package} {version}" in doc or f"{package}=={version}" in doc, f"docs/images.md lacks {package} {version}"


def test_dockerignore_keeps_the_build_context_to_the_package_sources():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # everything is excluded unless re-included below
    for kept in ("!pyproject.toml", "!operator/", "!worker/"):
        assert kept in lines
