"""The open-ended fields of a phase task (spec.task kind open-ended; rzero_worker/openended/): pure, like tasks.py.

| phase                                | field        | holds                                                  |
|--------------------------------------|--------------|--------------------------------------------------------|
| challenger, generate, label, solver  | `openEnded`  | spec.task and the judge: the frozen Verifier           |
| evaluate, from iteration 1, heldOut  | `winRate`    | spec.task, iteration 0's Solver, the oracle as judge   |
| warmup                               | `openEndedTask` | spec.task: the warm-up teaches its formats          |

The Verifier is spec.verifier's endpoint or model, by default a copy of the Solver's base model as iteration 1
reads it (solver(0)), as for the veto. The win rate's judge is the oracle: its endpoint where one is set, else its
model — an independent judge, not the Verifier the Solver was trained to please.
"""

from __future__ import annotations

from rzero_worker.task import ModelInput, OpenEndedInput, VerifierInput, WinRateInput

from .api.spec import RZeroRunSpec

OPEN_ENDED_PHASES = ("challenger", "generate", "label", "solver")


def judge_input(spec: RZeroRunSpec) -> VerifierInput:
    """The open-ended Verifier: the endpoint, the named model, or a copy of solver(0)."""
    from .tasks import solver_input

    settings = spec.verifier
    common = dict(max_tokens=settings.max_tokens, batch_size=settings.batch_size)
    if settings.endpoint is not None:
        return VerifierInput(endpoint=settings.endpoint.model_copy(deep=True), **common)
    model = ModelInput(source=settings.model) if settings.model is not None else solver_input(spec, 0)
    return VerifierInput(model=model, **common)


def oracle_judge(spec: RZeroRunSpec) -> VerifierInput | None:
    """The win rate's judge: the oracle endpoint, else the oracle model; None without an oracle."""
    oracle = spec.oracle
    if oracle.endpoint is not None:
        return VerifierInput(endpoint=oracle.endpoint.model_copy(deep=True), max_tokens=oracle.endpoint.max_tokens)
    if oracle.model is not None:
        return VerifierInput(model=ModelInput(source=oracle.model.source), max_tokens=oracle.model.max_tokens,
                             batch_size=oracle.model.batch_size)
    return None


def with_open_ended(spec: RZeroRunSpec, task, iteration: int, phase: str):
    """`task` with its open-ended field set where spec.task is open-ended (else unchanged)."""
    from .tasks import solver_input

    if not spec.task.open_ended:
        return task
    settings = spec.task.model_copy(deep=True)
    if phase == "warmup":  # the warm-up teaches the open-ended formats (rzero_worker/warmup_openended.py)
        return task.model_copy(update={"open_ended_task": settings})
    if phase in OPEN_ENDED_PHASES:
        judge = judge_input(spec)
        if phase == "label" and judge.model is not None:  # spec.verifier.gpus: the label pod's Verifier GPUs
            from .sizing import verifier_gpus

            judge.gpus = verifier_gpus(spec, "label")
        return task.model_copy(update={"open_ended": OpenEndedInput(task=settings, judge=judge)})
    judge = oracle_judge(spec)
    if phase == "evaluate" and iteration > 0 and settings.held_out is not None and judge is not None:
        return task.model_copy(update={"win_rate": WinRateInput(task=settings, baseline=solver_input(spec, 0),
                                                                judge=judge)})
    return task
