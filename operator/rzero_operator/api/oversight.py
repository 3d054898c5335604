"""API types for watching a run: the drift guard, the human approval gate, retention and export (spec
blocks), and what the status records about them (best iteration, pending approval, decisions, early stop,
per-oracle label accuracy, the Verifier's veto, the export's location).

The logic lives in pure modules beside the plan: `guard.py`, `approval.py`, `retention.py`, `export.py`,
tied together by `oversight.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from rzero_worker.task import AuditVerdict, PhaseName, Schema

# --------------------------------------------------------------------------------------------------
# Spec


class GuardSpec(Schema):
    """Stop (or pause) a run before label drift ruins it. An iteration is in violation when its label
    accuracy's 95% lower bound is below `minLabelAccuracy` (checked after labelling, before the Solver
    trains on the labels) or its mean evaluation score is more than `maxScoreDrop` below the best
    iteration's (checked after evaluation). The guard acts when `patience` consecutive iterations are in
    violation, on new evidence only; label accuracy counts as evidence from `minChecked` checks on."""

    min_label_accuracy: float | None = Field(
        default=None, ge=0, le=1,
        description="Act when the lower bound of the iteration's label accuracy interval is below this "
        "(needs an oracle: spec.oracle). Unset: label accuracy is not guarded.",
    )
    max_score_drop: float | None = Field(
        default=None, ge=0, le=1,
        description="Act when the mean evaluation accuracy falls more than this (absolute, e.g. 0.05 = 5 "
        "points) below the best iteration's so far. Unset: scores are not guarded.",
    )
    min_verifier_accuracy: float | None = Field(
        default=None, ge=0, le=1,
        description="spec.verifier.mode trained: act when the lower bound of the trained Verifier's held-out "
        "accuracy interval is below this (checked after its phase, before the next labelling uses it; "
        "from minChecked held-out examples on). Unset: not guarded.",
    )
    min_checked: int = Field(
        default=10, ge=1, le=100000,
        description="Oracle-checked questions an iteration needs before minLabelAccuracy applies: the interval "
        "of a handful of checks is too wide to say anything (one wrong label out of one checked has a lower "
        "bound of 0).",
    )
    patience: int = Field(default=1, ge=1, le=100, description="Consecutive iterations in violation before acting.")
    action: Literal["stop", "pause"] = Field(
        default="stop",
        description="stop: the run ends Succeeded with reason EarlyStopped (the best Solver so far is its "
        "result, exported when spec.export.enabled); pause: the run waits in stage AwaitingApproval until a "
        "person approves (continue) or rejects (stop), like spec.approval.",
    )

    @model_validator(mode="after")
    def _some_threshold(self) -> "GuardSpec":
        if self.min_label_accuracy is None and self.max_score_drop is None and self.min_verifier_accuracy is None:
            raise ValueError("minLabelAccuracy: set minLabelAccuracy, maxScoreDrop or minVerifierAccuracy (a guard with none "
                             "never acts)")
        return self


class ApprovalSpec(Schema):
    """A human gate: after each listed phase of every iteration the run waits (stage AwaitingApproval) until
    a person approves or rejects. Approve: `kubectl annotate rzr NAME rzero.dev/approve=<gate>`; reject:
    `rzero.dev/reject=<gate>` (gate = the iteration number after labelling, `<iteration>/<phase>` after
    another phase; status.approval.gate names it). Locally: `rzero approve FILE --iteration N [--reject]`.
    A rejection stops the run (Succeeded, reason Rejected) before the rejected work is used."""

    after: list[PhaseName] = Field(
        default_factory=lambda: ["label"], min_length=1, max_length=5,
        description="Phases after which to wait (default: label, so a person reads the audit sample before "
        "the Solver trains on the labels).",
    )


class RetentionSpec(Schema):
    """Keep storage bounded over long runs: the training checkpoints (Challenger and Solver) of the newest
    `keepLast` iterations and of the best iteration are kept; older ones, and leftover resume checkpoints,
    are deleted by the next Challenger Job (and the export). Nothing a later phase reads is ever deleted:
    iteration i+1 starts from iteration i's checkpoints, which are always among the newest."""

    keep_last: int = Field(default=2, ge=1, le=1000, description="Iterations whose checkpoints are kept (>= 1).")


class ExportSpec(Schema):
    """When the run ends (all iterations done, or stopped early), copy the best and the last Solver into
    plain Hugging Face directories with a model card, under `<run root>/iter-NNN/export/{best,last}`."""

    enabled: bool = Field(default=False, description="Run the export step at the end of the run.")


# --------------------------------------------------------------------------------------------------
# Status


class OracleRecord(Schema):
    """One oracle's checks of an iteration's kept pseudo-labels (summed over label shards)."""

    asked: int = Field(default=0, ge=0, description="Kept questions put to the oracle.")
    checked: int = Field(default=0, ge=0, description="Questions it answered (the others are not checked).")
    correct: int = Field(default=0, ge=0, description="Checked pseudo-labels equivalent to its answer.")
    accuracy: float | None = Field(default=None, description="correct / checked.")
    ci95: list[float] | None = Field(default=None, description="95% Wilson interval of accuracy.")
    requests: int | None = Field(default=None, description="Endpoint: HTTP requests made, retries included.")
    malformed: int | None = Field(default=None, description="Endpoint: replies that were not a chat completion.")
    failed: int | None = Field(default=None, description="Endpoint: questions left unanswered after retries.")
    over_budget: int | None = Field(default=None, description="Endpoint: questions not asked, the budget spent.")
    error: str | None = Field(default=None, max_length=1024, description="Why the oracle stopped early, if it did.")


class VetoRecord(Schema):
    """The Verifier's veto of an iteration's kept pseudo-labels (labeling.verifier: veto; summed over label shards).

    The label accuracy before and after the veto and the correct labels vetoed come from the headline oracle's
    checks (labelOracle) of the same kept questions; the iteration's labelAccuracy is the after-veto one."""

    source: str | None = Field(default=None, max_length=64, description="model or endpoint.")
    judged: int = Field(default=0, ge=0, description="Kept (question, label) pairs put to the Verifier.")
    approved: int = Field(default=0, ge=0, description="Pairs it judged correct: the only ones kept.")
    rejected: int = Field(default=0, ge=0, description="Pairs it judged incorrect (vetoed).")
    unparsable: int = Field(default=0, ge=0, description="Outputs with no readable verdict (vetoed: never approval).")
    unavailable: int = Field(default=0, ge=0, description="Pairs it gave no output for: endpoint failure or budget (vetoed).")
    vetoed: int = Field(default=0, ge=0, description="rejected + unparsable + unavailable.")
    checked_before: int = Field(default=0, ge=0, description="Oracle-checked pairs among the judged.")
    correct_before: int = Field(default=0, ge=0, description="Of those, labels the oracle agrees with.")
    accuracy_before: float | None = Field(default=None, description="Label accuracy of the kept set before the veto.")
    ci95_before: list[float] | None = Field(default=None, description="95% Wilson interval of accuracyBefore.")
    checked_after: int = Field(default=0, ge=0, description="Oracle-checked pairs the veto kept.")
    correct_after: int = Field(default=0, ge=0, description="Of those, labels the oracle agrees with.")
    accuracy_after: float | None = Field(default=None, description="Label accuracy of the kept set after the veto.")
    ci95_after: list[float] | None = Field(default=None, description="95% Wilson interval of accuracyAfter.")
    correct_vetoed: int = Field(default=0, ge=0, description="Oracle-checked correct labels the veto threw away.")
    wrong_vetoed: int = Field(default=0, ge=0, description="Oracle-checked wrong labels the veto caught.")
    verifier_accuracy: float | None = Field(
        default=None, description="Share of oracle-checked pairs where the verdict matches the oracle (unparsable = wrong)."
    )
    verifier_accuracy_ci95: list[float] | None = Field(default=None, description="95% Wilson interval of verifierAccuracy.")
    oracle_compared: int = Field(default=0, ge=0, description="Pairs verifierAccuracy is over.")
    requests: int | None = Field(default=None, description="Endpoint: HTTP requests made, retries included.")
    malformed: int | None = Field(default=None, description="Endpoint: replies that were not a chat completion.")
    failed: int | None = Field(default=None, description="Endpoint: pairs left without a reply after retries.")
    over_budget: int | None = Field(default=None, description="Endpoint: pairs not sent, the budget spent.")
    error: str | None = Field(default=None, max_length=1024, description="Why the endpoint Verifier stopped early.")


class VerifierTrainingRecord(Schema):
    """What an iteration's `verifier` phase (spec.verifier.mode trained) did: its examples, the held-out accuracy of
    its greedy verdicts before and after GRPO (an unparsable verdict counts as wrong), and whether it learned."""

    examples: int = Field(default=0, ge=0, description="Verification examples of known truth the label phase gave.")
    train_examples: int = Field(default=0, ge=0, description="Of those, trained on.")
    held_out: int = Field(default=0, ge=0, description="Held out (a seeded split by question) and judged.")
    sources: dict[str, int] = Field(default_factory=dict, description="Examples by source: consensus, oracle, audit.")
    audit_verdicts: int = Field(default=0, ge=0, description="A person's per-item verdicts used (the approval gate).")
    accuracy_before: float | None = Field(default=None, description="Held-out accuracy before training.")
    accuracy_after: float | None = Field(default=None, description="Held-out accuracy after training.")
    accuracy_after_ci95: list[float] | None = Field(default=None, description="95% Wilson interval of accuracyAfter.")
    unparsable_after: int | None = Field(default=None, description="Held-out verdicts it could not be read after.")
    oracle_held_out: int | None = Field(default=None, description="Held-out examples an oracle checked.")
    oracle_accuracy_before: float | None = Field(default=None, description="Accuracy on those before training.")
    oracle_accuracy_after: float | None = Field(default=None, description="Accuracy on those after training.")
    steps: int | None = Field(default=None, description="Rollout steps trained (0: carried forward unchanged).")
    mean_reward: float | None = Field(default=None, description="Mean reward (agreement with the truth) of training.")
    reward_std: float | None = Field(default=None, description="Mean within-group reward spread (0: nothing to learn).")
    weight_change: float | None = Field(
        default=None, description="Relative L2 distance of the new weights from the input's (0: nothing moved)."
    )
    skipped: str | None = Field(default=None, max_length=1024, description="Why it did not train, if it did not.")


class BestIteration(Schema):
    iteration: int = Field(ge=0, description="Iteration with the highest mean evaluation score (0 = base model).")
    score: float = Field(description="Its mean evaluation score.")
    solver_checkpoint: str = Field(description="Where its Solver is: a run-root location, or the base model source.")


class PendingApproval(Schema):
    gate: str = Field(description="The value to approve or reject with: '<iteration>' or '<iteration>/<phase>'.")
    iteration: int = Field(ge=0, description="The iteration waiting.")
    after: str = Field(description="The phase whose output waits for a decision.")
    reasons: list[str] = Field(default_factory=list, description="Why: the approval gate and/or the guard.")
    audit_sample: str = Field(default="", description="Where to read the iteration's audit.jsonl and oracle.jsonl.")
    requested_at: datetime | None = Field(default=None, description="When the run started waiting.")


class ApprovalDecision(Schema):
    gate: str = Field(description="The gate decided.")
    iteration: int = Field(ge=0)
    after: str = Field(description="The phase whose output was decided on.")
    decision: Literal["Approved", "Rejected"]
    by: str = Field(default="", max_length=256, description="Who decided (annotation rzero.dev/decided-by).")
    at: datetime | None = Field(default=None, description="When the decision was made (or first seen).")
    reason: str = Field(default="", max_length=1024, description="Why (annotation rzero.dev/reason).")
    verdicts: list[AuditVerdict] = Field(
        default_factory=list, max_length=10000,
        description="Per-item verdicts on the audit sample (annotation rzero.dev/verdicts: id=correct,id=incorrect); "
        "a trained Verifier learns from them (spec.verifier.mode trained).",
    )


class EarlyStop(Schema):
    iteration: int = Field(ge=0, description="The iteration the run stopped in.")
    reason: Literal["EarlyStopped", "Rejected"]
    message: str = Field(default="", max_length=4096)
    at: datetime | None = None


class ExportedLocation(Schema):
    iteration: int = Field(ge=0)
    location: str = Field(description="The exported Hugging Face directory.")


class ExportStatus(Schema):
    iteration: int = Field(ge=0, description="The iteration the run ended at (the export's iter-NNN).")
    best: ExportedLocation
    last: ExportedLocation
