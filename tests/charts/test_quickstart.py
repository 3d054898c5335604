"""The README's cluster quick start: it builds and pushes both Dockerfile targets before `helm install`, and the
`--set` flags it gives helm are chart values that point the operator and its Jobs at the images it pushed."""

import re
import shlex

from .helm_render import REPO, by_kind, deep_merge, render_chart


def quick_start() -> list[list[str]]:
    """The commands of the quick start's shell block, continuation lines joined, comments dropped."""
    section = (REPO / "README.md").read_text().split("## Kubernetes quick start", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in block.splitlines() if shlex.split(line, comments=True)]


def set_values(argv: list[str], env: dict[str, str]) -> dict:
    """helm's `--set a.b=x` flags (plain scalars; `{x}` lists), with $VARS expanded, as a values dict."""
    values: dict = {}
    for flag, arg in zip(argv, argv[1:]):
        if flag != "--set":
            continue
        for assignment in arg.split(","):
            key, value = assignment.split("=", 1)
            value = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], value)
            parsed = value[1:-1].split(",") if value.startswith("{") else value
            nested = parsed
            for part in reversed(key.split(".")):
                nested = {part: nested}
            values = deep_merge(values, nested)
    return values


def test_the_quick_start_builds_and_pushes_both_dockerfile_targets_before_installing_the_chart():
    commands = quick_start()
    targets = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", (REPO / "Dockerfile").read_text()))
    built = {argv[argv.index("--target") + 1]: argv[argv.index("-t") + 1] for argv in commands
             if argv[:2] == ["docker", "build"]}
    pushed = [argv[2] for argv in commands if argv[:2] == ["docker", "push"]]
    assert set(built) == targets == {"operator", "worker"}
    assert sorted(pushed) == sorted(built.values())
    install = next(i for i, argv in enumerate(commands) if argv[:2] == ["helm", "install"])
    assert all(i < install for i, argv in enumerate(commands) if argv[0] == "docker")


def test_the_quick_starts_helm_flags_point_the_operator_and_its_jobs_at_the_pushed_images():
    commands = quick_start()
    (registry,) = [argv[0].split("=", 1)[1] for argv in commands if argv[0].startswith("REGISTRY=")]
    env = {"REGISTRY": registry}
    pushed = {re.sub(r"\$REGISTRY", registry, argv[2]) for argv in commands if argv[:2] == ["docker", "push"]}
    (install,) = [argv for argv in commands if argv[:2] == ["helm", "install"]]
    (deployment,) = by_kind(render_chart(set_values(install, env)), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    worker_image = next(e["value"] for e in container["env"] if e["name"] == "RZERO_WORKER_IMAGE")
    assert {container["image"], worker_image} == pushed
    assert container["args"][:3] == ["operator", "--namespace", "ml"]  # watching the namespace the runs go to
