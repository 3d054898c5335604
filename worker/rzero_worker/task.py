"""The task contract: what one phase Job (or local subprocess) is asked to do.

The operator builds a `PhaseTask` from the RZeroRun spec; `rzero worker PHASE --task FILE` validates it
before anything heavy is imported. This module imports pydantic only, so the control plane (which has no
torch) shares these types: the per-phase settings below are also the `spec.<phase>` blocks of RZeroRun.

Names are camelCase on the wire (Kubernetes style) and snake_case in Python.
Defaults follow the paper; where the reference code differs, the field says so and both are selectable.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

# The settings types live by concern in settings_*.py; they are part of this contract and imported from here.
from .settings_common import (  # noqa: F401
    ALL_PHASES, ENV_NAME, PHASES, PRUNABLE_KEY, RUN_KEY, TASK_API_VERSION, VERIFIER_PHASE, WORKER_PHASES, DeviceHints,
    ModelInput, PhaseName, Sampling, Schema, Shard, StorageLocation, iteration_phases,
)
from .settings_data import (  # noqa: F401
    LOCATION_URI, AnchorInput, AnchorSettings, BenchmarkSpec, Checker, CorpusSettings, EvaluationSettings, GenerationSettings, Grading,
    LabelingSettings, VoteMode,
)
from .settings_oversight import (  # noqa: F401
    AuditVerdict, MlflowSettings, OracleEndpointSettings, OracleModelSettings, OracleSettings, SecretKeySelector,
    TrackingSettings, VerifierGRPOSettings, VerifierInput, VerifierSettings, VerifierTrainingSettings, WandbSettings,
)
from .settings_training import (  # noqa: F401
    ChallengerGRPOSettings, ChallengerSettings, GRPOSettings, SolverGRPOSettings, SolverSettings, WarmupSettings,
)
from .settings_task import HeldOutSettings, OpenEndedInput, TaskKind, TaskSettings, WinRateInput  # noqa: F401

# spec.task kind open-ended (openended/): the phases that read it carry this field; None = the verifiable loop.
_OPEN_ENDED_FIELD = dict(default=None, description="spec.task open-ended: the task settings and the Verifier that "
                         "scores responses (unset: the verifiable loop).")

# --------------------------------------------------------------------------------------------------
# Tasks: one per phase


class TaskBase(Schema):
    api_version: Literal["rzero.dev/task-v1"] = Field(default=TASK_API_VERSION, alias="apiVersion")
    run: str = Field(
        min_length=1, max_length=253, pattern=r"^[^\x00-\x1f\x7f]+$", description="Run name (for logs and summaries)."
    )
    iteration: int = Field(ge=0, le=10000)
    storage: StorageLocation
    output: str = Field(
        max_length=1024, pattern=RUN_KEY, description="Run-relative key this phase commits, e.g. 'iter-001/challenger'."
    )
    seed: int = Field(default=0)
    device: DeviceHints = Field(default_factory=DeviceHints)
    prune: list[Annotated[str, Field(pattern=PRUNABLE_KEY)]] = Field(
        default_factory=list,
        description="Run-relative checkpoint prefixes to delete before the phase runs (spec.retention; the "
        "operator computes them). Only training checkpoints match: nothing else can be named here.",
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="The run's spec.tracking.")


class WarmupTask(TaskBase):
    phase: Literal["warmup"] = "warmup"
    model: ModelInput
    settings: WarmupSettings = Field(default_factory=WarmupSettings)
    open_ended_task: TaskSettings | None = Field(
        default=None, description="spec.task open-ended: the warm-up teaches the open-ended formats for its "
        "description and rubric (warmup_openended.py; unset: the verifiable formats).",
    )

    @model_validator(mode="after")
    def _open_ended_task(self) -> "WarmupTask":
        if self.open_ended_task is not None and not self.open_ended_task.open_ended:
            raise ValueError("openEndedTask.kind: must be open-ended")
        return self


class ChallengerTask(TaskBase):
    phase: Literal["challenger"] = "challenger"
    challenger: ModelInput
    solver: ModelInput
    settings: ChallengerSettings = Field(default_factory=ChallengerSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading and checker: p-hat uses them.")
    corpus: CorpusSettings | None = Field(
        default=None, description="The run's spec.corpus: the training prompts carry passages (grounded format)."
    )
    anchors: AnchorInput | None = Field(default=None, description="The run's spec.anchors: examples in the prompts.")

    @model_validator(mode="after")
    def _variance_needs_a_corpus(self) -> "ChallengerTask":
        if self.settings.objective == "variance" and self.corpus is None:
            raise ValueError("corpus: settings.objective variance scores pass rates against document answers; "
                             "it needs a corpus")
        return self
    open_ended: OpenEndedInput | None = Field(**_OPEN_ENDED_FIELD)


class GenerateTask(TaskBase):
    phase: Literal["generate"] = "generate"
    challenger: ModelInput
    shard: Shard = Field(default_factory=Shard)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading of Challenger outputs.")
    corpus: CorpusSettings | None = Field(
        default=None, description="The run's spec.corpus: passages to ground questions in."
    )
    anchors: AnchorInput | None = Field(default=None, description="The run's spec.anchors: examples in the prompts.")
    open_ended: OpenEndedInput | None = Field(**_OPEN_ENDED_FIELD)


class LabelTask(TaskBase):
    phase: Literal["label"] = "label"
    solver: ModelInput
    questions: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the generate output (all shards are read).")
    shard: Shard = Field(default_factory=Shard)
    settings: LabelingSettings = Field(default_factory=LabelingSettings)
    oracle: OracleSettings = Field(default_factory=OracleSettings)
    verifier: VerifierInput | None = Field(
        default=None, description="The Verifier that vetoes kept labels (set when labeling.verifier is veto)."
    )
    open_ended: OpenEndedInput | None = Field(**_OPEN_ENDED_FIELD)
    verification_consensus: float | None = Field(
        default=None, gt=0.5, le=1,
        description="spec.verifier.mode trained: write verification.jsonl, the trained Verifier's examples, taking "
        "majority labels of at least this share as true (verifier.training.consensus).",
    )

    @model_validator(mode="after")
    def _verifier_when_veto(self) -> "LabelTask":
        if (self.settings.verifier == "veto") != (self.verifier is not None):
            raise ValueError("verifier: set exactly when settings.verifier is veto")
        return self


class SolverTask(TaskBase):
    phase: Literal["solver"] = "solver"
    solver: ModelInput
    dataset: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the label output (all shards are read).")
    settings: SolverSettings = Field(default_factory=SolverSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading and checker: the reward uses them.")
    anchors: AnchorInput | None = Field(
        default=None, description="The run's spec.anchors: rows mixed into the training set."
    )
    open_ended: OpenEndedInput | None = Field(**_OPEN_ENDED_FIELD)


class VerifierTask(TaskBase):
    """GRPO on the Verifier (spec.verifier.mode trained) on the examples of one iteration's label phase."""

    phase: Literal["verifier"] = "verifier"
    verifier: ModelInput = Field(description="The Verifier to train: verifier(i-1), or its base model at i = 1.")
    examples: str = Field(
        max_length=1024, pattern=RUN_KEY,
        description="Run-relative key of the label output: verification.jsonl and audit.jsonl of every shard.",
    )
    audit: list[AuditVerdict] = Field(
        default_factory=list, max_length=100000,
        description="A person's per-item verdicts on this iteration's audit sample (the approval gate).",
    )
    settings: VerifierTrainingSettings = Field(default_factory=VerifierTrainingSettings)
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="New tokens per held-out verdict (greedy).")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Held-out pairs per generation call.")


class EvaluateTask(TaskBase):
    phase: Literal["evaluate"] = "evaluate"
    model: ModelInput
    shard: Shard = Field(default_factory=Shard, description="Items i with i % count == index of every benchmark.")
    settings: EvaluationSettings = Field(default_factory=EvaluationSettings)
    win_rate: WinRateInput | None = Field(
        default=None, description="spec.task open-ended with heldOut, from iteration 1: the win rate against "
        "iteration 0's Solver (openended/winrate.py).",
    )


class ExportedModel(Schema):
    iteration: int = Field(ge=0, description="The iteration whose Solver this is (0 = the base model).")
    model: ModelInput = Field(description="Its checkpoint (artifact) or, for iteration 0, the base model source.")


class CardRow(Schema):
    """One iteration's figures in the model card."""

    iteration: int = Field(ge=0)
    kept: int | None = None
    label_accuracy: float | None = None
    label_accuracy_ci95: list[float] | None = None
    oracle_checked: int | None = None
    oracle: str | None = None
    mean_score: float | None = None
    scores: dict[str, float] = Field(default_factory=dict)


class ModelCardData(Schema):
    """What the export phase writes into README.md beside the exported weights."""

    base_model: str = Field(description="spec.model (or spec.solverSource).")
    iterations: int = Field(ge=0, description="Iterations the run was asked for.")
    stopped: str | None = Field(default=None, description="Why the run stopped early, if it did.")
    rows: list[CardRow] = Field(default_factory=list)
    spec: dict = Field(default_factory=dict, description="The RZeroRun spec that produced the model.")


class ExportTask(TaskBase):
    """Copy the best and the last Solver into plain Hugging Face directories with a model card."""

    phase: Literal["export"] = "export"
    best: ExportedModel
    last: ExportedModel
    card: ModelCardData


PhaseTask = Annotated[
    Union[WarmupTask, ChallengerTask, GenerateTask, LabelTask, VerifierTask, SolverTask, EvaluateTask, ExportTask],
    Field(discriminator="phase"),
]


def parse_task(
    data: dict,
) -> WarmupTask | ChallengerTask | GenerateTask | LabelTask | VerifierTask | SolverTask | EvaluateTask | ExportTask:
    """Validate a task document (strict types, as the API server reads the spec it came from: "3" is not
    an integer); raises pydantic.ValidationError naming the bad field."""
    from pydantic import TypeAdapter

    return TypeAdapter(PhaseTask).validate_python(data, strict=True)
