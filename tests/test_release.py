"""Images and charts a user can get: the release workflow (.github/workflows/release.yml) builds every Dockerfile
target, pushes it to GHCR with provenance and pushes the chart as an OCI artefact; every workflow lints clean with
the real actionlint (with ShellCheck on the `run:` scripts), and the Dockerfile with hadolint, where the test
extra's wheels installed them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"


def tool(name: str) -> str:
    """A linter from the venv's bin (the test extra's wheels), else PATH; skips naming the wheel when absent."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pyproject.toml's test extra pins the wheel that brings it)")
    return found


def shellcheck() -> str:
    """ShellCheck for actionlint's `run:` checks ("" turns them off where it is not installed)."""
    return shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck") or ""


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("actionlint"), "-no-color", f"-shellcheck={shellcheck()}", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def dockerfile_targets() -> set[str]:
    return set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", (REPO / "Dockerfile").read_text()))


def release() -> dict:
    return yaml.safe_load(RELEASE.read_text())


def steps(job: str) -> list[dict]:
    return release()["jobs"][job]["steps"]


def test_every_workflow_lints_clean_with_actionlint():
    workflows = sorted(WORKFLOWS.glob("*.y*ml"))
    assert RELEASE in workflows
    result = actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_here_does_catch_a_script_injection_and_an_unquoted_variable(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.head_commit.message }}\n      - run: x='a b'; ls $x\n")
    result = actionlint(bad)
    assert result.returncode == 1 and "potentially untrusted" in result.stdout
    if shellcheck():
        assert "SC2086" in result.stdout


def test_the_dockerfile_lints_clean_with_hadolint():
    result = subprocess.run([tool("hadolint"), "--no-color", str(REPO / "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_version_tag_releases_and_the_tag_must_match_the_package_and_chart_versions():
    body = release()
    assert body[True]["push"] == {"tags": ["v*"]}  # YAML 1.1 reads the key `on` as True
    check = " ".join(step.get("run", "") for step in steps("version"))
    assert "pyproject.toml" in check and "Chart.yaml" in check and "appVersion" in check and "exit 1" in check


def test_both_dockerfile_targets_are_built_pushed_to_ghcr_and_attested():
    job = release()["jobs"]["images"]
    assert set(job["strategy"]["matrix"]["target"]) == dockerfile_targets() == {"operator", "worker"}
    assert job["env"]["IMAGE"].startswith("ghcr.io/")
    (build,) = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["target"] == "${{ matrix.target }}" and build["with"]["push"] is True
    (attest,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/attest-build-provenance@")]
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert attest["with"]["push-to-registry"] is True
    assert job["permissions"] == {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"}
    assert release()["permissions"] == {"contents": "read"}  # nothing else gets write rights


def test_the_chart_is_pushed_as_an_oci_artefact_after_the_images():
    job = release()["jobs"]["chart"]
    assert "images" in job["needs"]
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert "helm package charts/rzero-operator" in scripts
    assert re.search(r'helm push "dist/rzero-operator-\$VERSION\.tgz" "oci://ghcr\.io/\$OWNER/charts"', scripts)
    assert "--password-stdin" in scripts and "${{ secrets" not in scripts  # the token goes through env, not argv


def test_no_secret_is_expanded_inside_a_script():
    for path in WORKFLOWS.glob("*.y*ml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                assert "secrets." not in step.get("run", ""), f"{path.name}: {step.get('name')}"
