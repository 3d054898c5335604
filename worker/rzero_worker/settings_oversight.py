"""Settings of the run's independent judges and observers: oracles (model, endpoint), the Verifier, the trackers,
and Secret references for their keys. Also the RZeroRun spec blocks. Re-exported by `rzero_worker.task`:
import from there."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .settings_common import ENV_NAME, ModelInput, Schema
from .settings_training import GRPOSettings

class OracleModelSettings(Schema):
    """A strong model answering the sampled questions greedily with the Solver's prompt (its last \\boxed{})."""

    source: str = Field(
        min_length=1, max_length=1024,
        description="The oracle model: a local HF directory, a .gguf file, s3://..., "
        "'builtin:smollm2-135m-instruct' or a Hugging Face hub id.",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="New tokens per answer.")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Questions per generation call.")


class SecretKeySelector(Schema):
    name: str = Field(min_length=1, max_length=253, description="Secret name (the run's namespace).")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class WandbSettings(Schema):
    """Weights & Biases: one W&B run per phase and iteration, grouped by the RZeroRun (namespace/name/uid)."""

    project: str = Field(default="rzero", min_length=1, max_length=128, description="W&B project.")
    entity: str | None = Field(default=None, min_length=1, max_length=128, description="W&B team or user.")
    mode: Literal["online", "offline"] = Field(
        default="online",
        description="offline: no server is contacted; the run is written under the phase output's wandb/ "
        "folder (upload it later with `wandb sync`).",
    )
    base_url: str | None = Field(
        default=None, max_length=1024, pattern=r"^https?://[^\s]+$", description="A self-hosted W&B server."
    )
    api_key_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding the W&B API key; every phase Job gets it as WANDB_API_KEY "
        "(a secretKeyRef: the key never appears in the spec, status, logs or events). Local runs: export it.",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20, description="Extra tags (the run, iteration and phase are always tags)."
    )


class MlflowSettings(Schema):
    """MLflow: one MLflow run per phase and iteration in the experiment `rzero/<namespace>/<name>`."""

    tracking_uri: str | None = Field(
        default=None, max_length=1024, pattern=r"^(https?|file|databricks)(://|:)[^\s]*$",
        description="The tracking server (http://mlflow:5000); unset: a file store under the phase output's "
        "mlruns/ folder (offline; open it with `mlflow ui --backend-store-uri`).",
    )
    experiment: str | None = Field(
        default=None, min_length=1, max_length=256, description="Experiment name; default rzero/<namespace>/<name>."
    )
    token_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding a tracking server token; every phase Job gets it as "
        "MLFLOW_TRACKING_TOKEN (by reference only).",
    )
    tags: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=20, description="Extra tags (rzero.run, rzero.iteration, rzero.phase are always set)."
    )


class TrackingSettings(Schema):
    """Experiment trackers besides TensorBoard, whose event files every phase always writes under its output
    (tensorboard/). A tracker that fails never fails a phase: a warning and `tracking_errors` in its summary."""

    wandb: WandbSettings | None = Field(default=None, description="Weights & Biases (needs the rzero[wandb] extra).")
    mlflow: MlflowSettings | None = Field(default=None, description="MLflow (needs the rzero[mlflow] extra).")


class OracleEndpointSettings(Schema):
    """An OpenAI-compatible chat completions endpoint (a vLLM server or any provider) answering the sampled
    questions with the Solver's prompt at temperature 0. The API key travels only by reference."""

    url: str = Field(
        max_length=1024, pattern=r"^https?://[^\s]+$",
        description="Base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1 (/chat/completions is "
        "appended unless the URL already ends with it).",
    )
    model: str = Field(min_length=1, max_length=256, description="The model name sent with each request.")
    api_key_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding the API key; only the Jobs whose task calls this endpoint "
        "(label; open-ended challenger, label, solver; a win-rate evaluate) get it as the variable named by apiKeyEnv (a secretKeyRef: the key never appears in the spec, status, logs or events).",
    )
    api_key_env: str = Field(
        default="RZERO_ORACLE_API_KEY", max_length=253, pattern=ENV_NAME,
        description="The environment variable the worker reads the API key from (local runs: export it "
        "before `rzero run`); unset or empty = no Authorization header.",
    )
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600, description="Per request: connect and read timeout.")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="Retries of a request answered 429 or 5xx, or timed out (exponential backoff)."
    )
    backoff_seconds: float = Field(
        default=2.0, ge=0, le=600, description="Wait before the first retry; doubles after each (a Retry-After header wins)."
    )
    max_requests: int = Field(
        default=1000, ge=1, le=1_000_000,
        description="Request budget per iteration, retries included (split across label shards); questions "
        "left when it is spent are not checked.",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="max_tokens of each request.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at once.")


class OracleSettings(Schema):
    """Independent answers that check the pseudo-labels of kept questions (label accuracy, label drift).

    The exact arithmetic oracle checks every kept question it can read. A model or endpoint oracle answers a
    seeded random sample of `sampleSize` kept questions per iteration; the label accuracy reported for the
    iteration is the sampled oracle's where one is set (the endpoint's when both are), else the arithmetic
    oracle's. Every oracle's own counts are recorded as well."""

    arithmetic: bool = Field(
        default=True,
        description="Check every kept question that is pure arithmetic against its exact value (free; "
        "questions with words or variables are not checked).",
    )
    sample_size: int = Field(
        default=64, ge=0, le=100000,
        description="Kept questions per iteration the model and endpoint oracles answer: a seeded random "
        "sample, split evenly across label shards.",
    )
    model: OracleModelSettings | None = Field(default=None, description="A model oracle, run greedily in the label Job.")
    endpoint: OracleEndpointSettings | None = Field(
        default=None, description="An OpenAI-compatible chat endpoint oracle."
    )


VerifierMode = Literal["frozen", "trained"]


class VerifierGRPOSettings(GRPOSettings):
    """GRPO on the Verifier (mode trained): verdicts are short, so smaller batches than the Solver's; the examples
    are cycled in a seeded order to fill every step (any number trains)."""

    steps: int = Field(default=5, ge=1, le=100000, description="Rollout steps per iteration.")
    group_size: int = Field(default=4, ge=2, le=64, description="Verdicts sampled per verification prompt.")
    rollout_batch_size: int = Field(default=128, ge=1, le=65536, description="Verification prompts per rollout step.")
    update_batch_size: int = Field(
        default=32, ge=1, le=65536, description="Prompts per optimizer update (4 updates per step by default)."
    )
    micro_batch_size: int = Field(
        default=1, ge=0, le=65536, description="Completions per device per forward/backward pass; 0 = the whole update."
    )
    max_completion_tokens: int = Field(
        default=1024, ge=8, le=65536, description="New tokens per sampled verdict (a check, then the boxed verdict)."
    )


class VerifierTrainingSettings(Schema):
    """How a trained Verifier learns each iteration (spec.verifier.mode: trained): GRPO on verification examples
    whose truth is known with confidence, reward = agreement of the parsed verdict with that truth (an unparsable
    verdict earns 0). The examples (label phase, `verification.jsonl`): high-consensus majority labels (share >=
    `consensus`; their answer is correct) with the sampled answers that disagree with them (incorrect), as CoVerRL
    trains its verifier; oracle-checked labels (the oracle's verdict wins); and a person's per-item verdicts
    recorded at the approval gate (they win over both)."""

    grpo: VerifierGRPOSettings = Field(default_factory=VerifierGRPOSettings, description="GRPO on the Verifier.")
    consensus: float = Field(
        default=0.9, gt=0.5, le=1,
        description="Majority share from which a pseudo-label counts as true for the Verifier's examples (its "
        "disagreeing answers as false), whether or not the agreement band kept the question.",
    )
    held_out: float = Field(
        default=0.2, gt=0, lt=1,
        description="Share of the example questions held out (a seeded split by question): accuracy before and "
        "after training is measured on them, never trained on.",
    )
    max_examples: int = Field(
        default=4096, ge=1, le=1_000_000, description="Training examples per iteration at most (a seeded sample)."
    )
    max_held_out: int = Field(
        default=256, ge=1, le=100000, description="Held-out examples judged before and after training at most."
    )


ENDPOINT_GPUS = "gpus: an endpoint Verifier runs on no GPU of the run; set gpus: 0 or a model Verifier"


class VerifierSettings(Schema):
    """spec.verifier: the third role (DESIGN.md §5), a frozen judge of (question, answer) pairs: a model run
    greedily in the label Job, or an OpenAI-compatible endpoint (LLM-as-judge). Its prompt is
    prompts.verifier_messages, its output is read by grading.parse_verdict. Used when `labeling.verifier` is
    `veto`."""

    mode: VerifierMode = Field(
        default="frozen",
        description="frozen: the Verifier's weights never change. trained: a `verifier` phase after each label "
        "phase trains it by GRPO on that labelling's confident examples (spec.verifier.training); the next "
        "iteration's label phase judges with the new checkpoint (needs a model Verifier and labeling.verifier: veto).",
    )
    training: VerifierTrainingSettings = Field(
        default_factory=VerifierTrainingSettings, description="mode trained: how the Verifier learns each iteration."
    )
    model: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="The Verifier model: a local HF directory, a .gguf file, s3://..., "
        "'builtin:smollm2-135m-instruct' or a Hugging Face hub id. Unset (and no endpoint): a copy of the "
        "Solver's base model as iteration 1 reads it (the warmed-up model with spec.warmup): a fixed judge, the "
        "same in every iteration, that does not share the current Solver's mistakes.",
    )
    endpoint: OracleEndpointSettings | None = Field(
        default=None,
        description="An OpenAI-compatible chat endpoint as the Verifier instead of a model (the endpoint oracle's "
        "client: key by Secret reference, timeouts, retries, a request budget per iteration).",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="New tokens per verdict (model Verifier).")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Pairs per generation call (model Verifier).")
    gpus: int = Field(
        default=0, ge=0, le=64,
        description="GPUs of the label pod that serve the model Verifier, added to the label phase's own "
        "(resources.gpus or resources.phases.label.gpus; one engine on all of them): the Verifier never shares the "
        "label Solver's GPUs. 0 = colocated: rank 0 judges on its own GPUs after the Solver's engine is done. "
        "Ignored on CPU (device.device cpu); an endpoint Verifier takes none.",
    )

    @model_validator(mode="after")
    def _model_or_endpoint(self) -> "VerifierSettings":
        if self.model is not None and self.endpoint is not None:
            raise ValueError("endpoint: set model or endpoint, not both")
        if self.mode == "trained" and self.endpoint is not None:
            raise ValueError("mode: a trained Verifier is a model; an endpoint cannot be trained")
        if self.gpus and self.endpoint is not None:
            raise ValueError(ENDPOINT_GPUS)
        return self

    @property
    def grpo(self) -> VerifierGRPOSettings:
        """The trained Verifier's GRPO settings (training.grpo), where spec.solver.grpo is the Solver's."""
        return self.training.grpo


class VerifierInput(Schema):
    """The label task's Verifier, resolved by the operator: exactly one of a model or an endpoint."""

    model: ModelInput | None = Field(default=None, description="The Verifier model (a source or a run artefact).")
    endpoint: OracleEndpointSettings | None = Field(default=None, description="The endpoint Verifier.")
    max_tokens: int = Field(default=4096, ge=1, le=65536)
    batch_size: int = Field(default=32, ge=1, le=100000)
    gpus: int = Field(default=0, ge=0, le=64, description="The pod's last GPUs the model Verifier runs on (0: "
                      "colocated, on the label rank's own).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "VerifierInput":
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("exactly one of model or endpoint must be set")
        return self


class AuditVerdict(Schema):
    """A person's verdict on one audited item (approval gate, rzero.dev/verdicts): is its label correct?"""

    id: str = Field(min_length=1, max_length=256, description="The question id (audit.jsonl).")
    correct: bool = Field(description="True: the label is correct; False: it is not.")
