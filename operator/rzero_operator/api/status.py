"""RZeroRun.status: what the control plane has seen and done. Written only by the plan's decisions.

Kept small for etcd: one `IterationRecord` per iteration with summary numbers, never per-question data.
Timestamps are timezone-aware UTC datetimes (RFC 3339 on the wire).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from rzero_worker.task import PhaseName, Schema

from .openended import JudgeRecord, WinRateRecord
from .oversight import (
    ApprovalDecision, BestIteration, EarlyStop, ExportStatus, OracleRecord, PendingApproval, VerifierTrainingRecord,
    VetoRecord,
)

RunPhase = Literal["Pending", "Running", "Suspended", "Succeeded", "Failed"]
Stage = Literal[
    "Pending", "FormatWarmup", "Evaluation", "ChallengerTraining", "QuestionGeneration", "Labeling",
    "SolverTraining", "VerifierTraining", "AwaitingApproval", "Exporting", "Done",
]
PhaseState = Literal["Pending", "Running", "Retrying", "Succeeded", "Failed"]
ConditionType = Literal["Ready", "Progressing", "Failed", "SpecValid", "Suspended"]

# The status stage shown while a worker phase runs.
STAGE_OF_PHASE: dict[str, str] = {
    "warmup": "FormatWarmup",
    "challenger": "ChallengerTraining",
    "generate": "QuestionGeneration",
    "label": "Labeling",
    "verifier": "VerifierTraining",
    "solver": "SolverTraining",
    "evaluate": "Evaluation",
    "export": "Exporting",
}


class Condition(Schema):
    """A Kubernetes-style condition."""

    type: ConditionType = Field(description="Ready, Progressing, Failed, SpecValid or Suspended.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=1024, description="CamelCase reason.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: datetime | None = Field(default=None, description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="metadata.generation this reflects.")


class CurrentAttempt(Schema):
    """The phase attempt in flight (or waiting to be retried)."""

    iteration: int = Field(ge=0, description="Iteration of the phase.")
    phase: Literal[PhaseName, "export"] = Field(description="Worker phase.")
    attempt: int = Field(ge=1, description="1-based attempt number.")
    name: str = Field(description="Deterministic name of the Job (or local process) of this attempt.")
    shards: int = Field(default=1, ge=1, description="Tasks (Indexed Job completions) of this attempt.")
    started_at: datetime | None = Field(default=None, description="When this attempt was started.")
    retry_at: datetime | None = Field(
        default=None, description="Set after a failed attempt: when the next attempt may start."
    )


class PhaseRecord(Schema):
    state: PhaseState = Field(description="Pending, Running, Retrying, Succeeded or Failed.")
    attempts: int = Field(default=0, ge=0, description="Attempts started so far.")
    started_at: datetime | None = Field(default=None, description="When the first attempt started.")
    finished_at: datetime | None = Field(default=None, description="When it succeeded or finally failed.")
    seconds: float | None = Field(default=None, description="Worker seconds of the successful attempt (max over shards).")
    message: str = Field(default="", max_length=4096, description="Last failure message, if any.")
    output_bytes: int | None = Field(default=None, ge=0, description="Bytes the phase committed.")


class IterationRecord(Schema):
    """Summary numbers of one iteration, filled from the phase summaries."""

    iteration: int = Field(ge=0, description="0 = the base model's evaluation.")
    challenger_checkpoint: str | None = Field(default=None, description="Run-relative key of challenger(i).")
    solver_checkpoint: str | None = Field(default=None, description="Run-relative key of solver(i).")
    verifier_checkpoint: str | None = Field(
        default=None, description="Run-relative key of verifier(i) (spec.verifier.mode trained)."
    )
    questions_generated: int | None = Field(default=None, description="Candidates requested from the Challenger.")
    questions_valid: int | None = Field(default=None, description="Candidates with a well-formed question.")
    questions_labelled: int | None = Field(default=None, description="Questions the Solver answered.")
    questions_kept: int | None = Field(default=None, description="Questions inside the agreement band.")
    mean_agreement: float | None = Field(default=None, description="Mean majority share over labelled questions.")
    drop_reasons: dict[str, int] = Field(default_factory=dict, description="Dropped questions by reason.")
    label_matches_challenger: float | None = Field(
        default=None, description="Share of kept labels equal to the Challenger's own answer (drift signal)."
    )
    document_agreement: float | None = Field(
        default=None, description="spec.corpus: share of the grounded questions whose vote equals the document's "
        "answer (the Challenger's), over those with both (label-quality signal)."
    )
    document_compared: int | None = Field(
        default=None, description="spec.corpus: grounded questions with both a vote and a document answer."
    )
    oracle_checked: int | None = Field(default=None, description="Kept questions an oracle answered.")
    label_accuracy: float | None = Field(
        default=None, description="Share of the oracle-checked pseudo-labels the oracle agrees with."
    )
    label_accuracy_ci95: list[float] | None = Field(default=None, description="95% Wilson interval of labelAccuracy.")
    label_oracle: str | None = Field(default=None, description="The oracle labelAccuracy comes from.")
    oracles: dict[str, OracleRecord] = Field(default_factory=dict, description="Label accuracy by oracle.")
    verifier: VetoRecord | None = Field(
        default=None, description="The Verifier's veto of the kept labels (labeling.verifier: veto)."
    )
    judge: JudgeRecord | None = Field(
        default=None, description="spec.task open-ended: how the Verifier scored the label phase's responses, with "
        "its length bias and score collapse."
    )
    win_rate: WinRateRecord | None = Field(
        default=None, description="spec.task open-ended with heldOut: the Solver against iteration 0's, judged by "
        "the oracle in both orders (with its position bias)."
    )
    verifier_training: VerifierTrainingRecord | None = Field(
        default=None, description="The trained Verifier's phase: examples, held-out accuracy before and after."
    )
    answer_entropy: float | None = Field(
        default=None, description="Proxy: mean entropy (bits) of the kept questions' answer distributions."
    )
    band_edge_share: float | None = Field(
        default=None, description="Proxy: share of kept questions within one vote of the band's edges."
    )
    guard_violations: list[str] = Field(default_factory=list, description="What the drift guard found wrong.")
    storage_bytes: int | None = Field(default=None, ge=0, description="Bytes the iteration's outputs hold in storage now.")
    pruned: list[str] = Field(default_factory=list, description="Checkpoints deleted by spec.retention.")
    challenger_reward: float | None = Field(default=None, description="Mean reward of Challenger training.")
    solver_reward: float | None = Field(default=None, description="Mean reward of Solver training.")
    scores: dict[str, float] = Field(default_factory=dict, description="Accuracy by benchmark.")
    mean_score: float | None = Field(default=None, description="Mean accuracy over benchmarks.")
    math_average: float | None = Field(
        default=None, description="The paper's MATH AVG: mean accuracy of the maths presets evaluated."
    )
    overall_average: float | None = Field(
        default=None,
        description="The paper's Overall AVG: mean of MATH AVG and the general-reasoning presets evaluated.",
    )
    started_at: datetime | None = Field(default=None, description="When its first phase started.")
    finished_at: datetime | None = Field(default=None, description="When its evaluation succeeded.")
    phases: dict[str, PhaseRecord] = Field(default_factory=dict, description="Per-phase state and attempts.")


class RZeroRunStatus(Schema):
    phase: RunPhase = Field(default="Pending", description="Pending, Running, Suspended, Succeeded or Failed.")
    iteration: int = Field(default=0, ge=0, description="Iteration in progress (or last finished).")
    progress: str = Field(default="", description="'iteration/iterations', for `kubectl get`.")
    stage: Stage = Field(default="Pending", description="What the run is doing now.")
    message: str = Field(default="", max_length=32768, description="Human-readable state.")
    observed_generation: int | None = Field(default=None, description="metadata.generation last acted on.")
    run_root: str | None = Field(default=None, description="Storage prefix <uri>/<namespace>/<name>/<uid>.")
    current: CurrentAttempt | None = Field(default=None, description="The phase attempt in flight.")
    kept_questions: int | None = Field(default=None, description="Questions kept by the latest labeling.")
    latest_score: float | None = Field(default=None, description="Mean accuracy of the latest evaluation.")
    failed_attempts: int = Field(default=0, ge=0, description="Failed phase attempts over the whole run.")
    latest_label_accuracy: float | None = Field(
        default=None, description="Label accuracy of the latest labelling (see iterationHistory for its interval)."
    )
    latest_verifier_accuracy: float | None = Field(
        default=None, description="Held-out accuracy of the latest trained Verifier (see iterationHistory[].verifierTraining)."
    )
    best_iteration: BestIteration | None = Field(default=None, description="The iteration with the best score.")
    approval: PendingApproval | None = Field(default=None, description="The decision the run waits for, if any.")
    approvals: list[ApprovalDecision] = Field(default_factory=list, description="Decisions made at approval gates.")
    stopped: EarlyStop | None = Field(default=None, description="Why the run stopped before its last iteration.")
    export: ExportStatus | None = Field(default=None, description="Where the exported Solvers are.")
    storage_bytes: int | None = Field(default=None, ge=0, description="Bytes the run's committed outputs hold now.")
    conditions: list[Condition] = Field(default_factory=list, description="Kubernetes-style conditions.")
    iteration_history: list[IterationRecord] = Field(default_factory=list, description="One record per iteration.")

    def record(self, iteration: int) -> IterationRecord | None:
        """The history record of `iteration`, if any."""
        for item in self.iteration_history:
            if item.iteration == iteration:
                return item
        return None

    def condition(self, type_: str) -> Condition | None:
        for item in self.conditions:
            if item.type == type_:
                return item
        return None
