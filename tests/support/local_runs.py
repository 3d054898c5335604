"""Manifests for local runs in tests (a plain module, not a pytest plugin): one iteration on the tiny
random model (tests/support/tiny_models.py) with the smallest budgets the phases accept."""

from __future__ import annotations

from pathlib import Path

import yaml


def tiny_manifest(model: str, storage: Path, **spec_overrides) -> dict:
    """One iteration on the tiny model with the smallest budgets the phases accept."""
    grpo = {"steps": 1, "groupSize": 2, "rolloutBatchSize": 2, "updateBatchSize": 2, "microBatchSize": 0,
            "maxPromptTokens": 256, "maxCompletionTokens": 16}
    spec = {
        "model": model,
        "iterations": 1,
        "storage": {"uri": str(storage)},
        "device": {"device": "cpu", "dtype": "float32", "backend": "transformers"},
        "challenger": {"grpo": grpo, "solverSamples": 2, "solverSampling": {"maxTokens": 12}},
        "generation": {"numQuestions": 4, "batchSize": 4, "sampling": {"maxTokens": 24}},
        "labeling": {"samples": 2, "sampling": {"maxTokens": 12}, "gradingWorkers": 1, "auditSize": 2},
        "solver": {"grpo": grpo},
        "evaluation": {"benchmarks": [{"name": "arithmetic", "kind": "arithmetic", "size": 3}], "maxTokens": 12},
        "retry": {"maxAttempts": 2, "backoffSeconds": 0},
    }
    spec.update(spec_overrides)
    return {"apiVersion": "rzero.dev/v1alpha1", "kind": "RZeroRun", "metadata": {"name": "tiny"}, "spec": spec}


def write_manifest(tmp_path: Path, manifest: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path
