"""Worker tasks for one phase of one iteration: pure, built from the spec as it is when the phase starts.

Which artefacts each phase reads (run-relative keys, see docs/ARCHITECTURE.md "Storage layout"):

| phase      | reads                                            | commits                        |
|------------|--------------------------------------------------|--------------------------------|
| warmup     | the base model (only with warmup.enabled)        | iter-000/warmup                |
| challenger | challenger(i-1) (base at i=1), solver(i-1)       | iter-i/challenger              |
| generate   | challenger(i)                                    | iter-i/generate/shard-..       |
| label      | solver(i-1), iter-i/generate (+ the Verifier)    | iter-i/label/shard-..          |
| verifier   | verifier(i-1) (its base at i=1), iter-i/label    | iter-i/verifier                |
| solver     | solver(i-1), iter-i/label                        | iter-i/solver                  |
| evaluate   | solver(i) (the base Solver model at i=0)         | iter-i/evaluate/shard-..       |

With a warm-up, "the base model" of both roles (challenger(0), solver(0)) is iter-000/warmup's model.

The `verifier` phase runs only with spec.verifier.mode trained, right after the label phase: it learns from that
labelling's confident examples (and the gate's per-item verdicts, which oversight.step_tasks adds), and the label
phase of iteration i judges with verifier(i-1) — the checkpoint of the iteration before, the base Verifier at i=1.
"""

from __future__ import annotations

import hashlib

from rzero_worker.task import (
    ALL_PHASES,
    AnchorInput,
    ChallengerTask,
    EvaluateTask,
    GenerateTask,
    LabelTask,
    ModelInput,
    Shard,
    SolverTask,
    StorageLocation,
    VerifierInput,
    VerifierTask,
    WarmupSettings,
    WarmupTask,
)

from .api.spec import RZeroRunSpec
from .sizing import verifier_gpus

AnyTask = WarmupTask | ChallengerTask | GenerateTask | LabelTask | VerifierTask | SolverTask | EvaluateTask


def iteration_key(iteration: int) -> str:
    return f"iter-{iteration:03d}"


def phase_key(iteration: int, phase: str) -> str:
    """Run-relative prefix of a phase's output (sharded phases commit one sub-prefix per shard)."""
    return f"{iteration_key(iteration)}/{phase}"


def run_root_for(storage_uri: str, namespace: str, name: str, uid: str) -> str:
    """The run root `<uri>/<namespace>/<name>/<uid>` (local runs use namespace 'local')."""
    return f"{storage_uri.rstrip('/')}/{namespace}/{name}/{uid}"


def derive_seed(root_seed: int, iteration: int, phase: str, shard: int = 0) -> int:
    """A stable 31-bit seed per (run seed, iteration, phase, shard): distinct streams, reproducible runs."""
    digest = hashlib.sha256(f"{root_seed}/{iteration}/{phase}/{shard}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# Data-parallel phases: each commits one `shard-IIIII-of-KKKKK` sub-prefix per shard, even with one shard.
SHARDED_PHASES: tuple[str, ...] = ("generate", "label", "evaluate")


def shard_count(spec: RZeroRunSpec, phase: str) -> int:
    """Tasks (Indexed Job completions) a phase runs as."""
    return getattr(spec.sharding, phase) if phase in SHARDED_PHASES else 1


def build_tasks(spec: RZeroRunSpec, run_root: str, run_name: str, iteration: int, phase: str) -> list[AnyTask]:
    """One task per shard for `phase` of `iteration`. Raises ValueError for an impossible step."""
    if phase not in ALL_PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(ALL_PHASES)}")
    if (phase == "warmup") != (iteration == 0 and phase != "evaluate"):
        raise ValueError(f"iteration 0 runs only the warm-up and the base evaluation; {phase!r} in iteration {iteration}")
    if phase == "warmup" and not spec.warmup.enabled:
        raise ValueError("the warm-up phase runs only with warmup.enabled")
    if phase == "verifier" and not spec.trained_verifier:
        raise ValueError("the verifier phase runs only with verifier.mode trained")
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    count = shard_count(spec, phase)
    if count < 1:
        raise ValueError(f"sharding.{phase} must be >= 1, got {count}")
    from .tasks_openended import with_open_ended  # spec.task open-ended: the phases' extra field

    return [with_open_ended(spec, _build_one(spec, run_root, run_name, iteration, phase, Shard(index=i, count=count)),
                            iteration, phase) for i in range(count)]


def _challenger_model(spec: RZeroRunSpec, iteration: int) -> ModelInput:
    """challenger(iteration): the base model at 0 (the warmed-up one with a warm-up), else that iteration's
    committed checkpoint."""
    if iteration == 0:
        return ModelInput(artifact=phase_key(0, "warmup")) if spec.warmup.enabled else ModelInput(source=spec.model)
    return ModelInput(artifact=phase_key(iteration, "challenger"))


def _solver_model(spec: RZeroRunSpec, iteration: int) -> ModelInput:
    """solver(iteration): the Solver's base model at 0 (the warmed-up one with a warm-up), else that
    iteration's committed checkpoint."""
    if iteration == 0:
        if spec.warmup.enabled:
            return ModelInput(artifact=phase_key(0, "warmup"))
        return ModelInput(source=spec.solver_model)
    return ModelInput(artifact=phase_key(iteration, "solver"))


def solver_input(spec: RZeroRunSpec, iteration: int) -> ModelInput:
    """solver(iteration) as the phases read it (export.py and the best iteration name the same Solver)."""
    return _solver_model(spec, iteration)


def _verifier_model(spec: RZeroRunSpec, iteration: int) -> ModelInput:
    """verifier(iteration) of a model Verifier: the named model or a copy of the Solver's base model as iteration 1
    reads it (solver(0)) at 0 and whenever it is frozen; a trained one's committed checkpoint from 1 on."""
    if spec.trained_verifier and iteration >= 1:
        return ModelInput(artifact=phase_key(iteration, "verifier"))
    return ModelInput(source=spec.verifier.model) if spec.verifier.model is not None else _solver_model(spec, 0)


def verifier_input(spec: RZeroRunSpec, iteration: int = 1) -> VerifierInput | None:
    """The Verifier of the label task of `iteration` (labeling.verifier: veto): the endpoint, or the model
    verifier(iteration - 1) — the named model or by default a copy of the Solver's base model as iteration 1
    reads it (solver(0): the warmed-up model with a warm-up); with mode trained, the previous iteration's
    checkpoint from iteration 2 on."""
    if spec.labeling.verifier != "veto":
        return None
    settings = spec.verifier
    common = dict(max_tokens=settings.max_tokens, batch_size=settings.batch_size)
    if settings.endpoint is not None:
        return VerifierInput(endpoint=settings.endpoint.model_copy(deep=True), **common)
    return VerifierInput(model=_verifier_model(spec, iteration - 1), gpus=verifier_gpus(spec, "label"), **common)


# warmup.verifierExamples when unset in a run whose Verifier is the warmed-up base model (labeling.verifier: veto,
# or spec.task open-ended: its Verifier scores every response)
DEFAULT_VERIFIER_EXAMPLES = 0.3


def warmup_settings(spec: RZeroRunSpec) -> WarmupSettings:
    """spec.warmup as the warm-up task carries it: with Verifier-format examples by default when the run's
    Verifier is a copy of the warmed-up model (a veto or an open-ended task, without verifier.model or
    verifier.endpoint)."""
    settings = spec.warmup.model_copy(deep=True)
    judged = spec.labeling.verifier == "veto" or spec.task.open_ended
    own_verifier = judged and spec.verifier.model is None and spec.verifier.endpoint is None
    if settings.verifier_examples is None and own_verifier:
        return settings.model_copy(update={"verifier_examples": DEFAULT_VERIFIER_EXAMPLES})
    return settings


def anchor_input(spec: RZeroRunSpec) -> AnchorInput | None:
    """spec.anchors as a phase reads them, with the run's evaluation benchmarks (no anchor may be one of their
    questions); None without anchors."""
    if spec.anchors is None:
        return None
    return AnchorInput(settings=spec.anchors.model_copy(deep=True),
                       benchmarks=[b.model_copy(deep=True) for b in spec.evaluation.benchmarks])


def task_common(spec: RZeroRunSpec, run_root: str, run_name: str, iteration: int, phase: str, shard: int = 0) -> dict:
    """The fields every task of (iteration, phase, shard) shares: run, iteration, storage, seed, device, tracking."""
    return dict(
        run=run_name,
        iteration=iteration,
        storage=StorageLocation(uri=run_root, endpoint_url=spec.storage.endpoint, region=spec.storage.region),
        seed=derive_seed(spec.seed, iteration, phase, shard),
        device=spec.device.model_copy(deep=True),
        tracking=spec.tracking.model_copy(deep=True),
    )


def _build_one(spec: RZeroRunSpec, run_root: str, run_name: str, i: int, phase: str, shard: Shard) -> AnyTask:
    common = task_common(spec, run_root, run_name, i, phase, shard.index)
    out = phase_key(i, phase)
    if phase == "warmup":
        return WarmupTask(**common, output=out, model=ModelInput(source=spec.model), settings=warmup_settings(spec))
    if phase == "challenger":
        return ChallengerTask(
            **common, output=out, challenger=_challenger_model(spec, i - 1), solver=_solver_model(spec, i - 1),
            settings=spec.challenger.model_copy(deep=True), grading=spec.labeling.grading(),
            corpus=spec.corpus.model_copy(deep=True) if spec.corpus else None, anchors=anchor_input(spec),
        )
    if phase == "generate":
        return GenerateTask(
            **common, output=f"{out}/{shard.key}", challenger=_challenger_model(spec, i), shard=shard,
            settings=spec.generation.model_copy(deep=True), grading=spec.labeling.grading(),
            corpus=spec.corpus.model_copy(deep=True) if spec.corpus else None, anchors=anchor_input(spec),
        )
    if phase == "label":
        return LabelTask(
            **common, output=f"{out}/{shard.key}", solver=_solver_model(spec, i - 1),
            questions=phase_key(i, "generate"), shard=shard, settings=spec.labeling.model_copy(deep=True),
            oracle=spec.oracle.model_copy(deep=True), verifier=verifier_input(spec, i),
            verification_consensus=spec.verifier.training.consensus if spec.trained_verifier else None,
        )
    if phase == "verifier":
        return VerifierTask(
            **common, output=out, verifier=_verifier_model(spec, i - 1), examples=phase_key(i, "label"),
            settings=spec.verifier.training.model_copy(deep=True), max_tokens=spec.verifier.max_tokens,
            batch_size=spec.verifier.batch_size,
        )
    if phase == "solver":
        return SolverTask(
            **common, output=out, solver=_solver_model(spec, i - 1), dataset=phase_key(i, "label"),
            settings=spec.solver.model_copy(deep=True), grading=spec.labeling.grading(), anchors=anchor_input(spec),
        )
    return EvaluateTask(
        **common, output=f"{out}/{shard.key}", model=_solver_model(spec, i), shard=shard,
        settings=spec.evaluation.model_copy(deep=True),
    )
