r"""The model oracle: a (stronger) model answers each question greedily, as the Solver is asked to.

The model comes from any source `rzero_worker.models.resolve_model` knows (a local Hugging Face directory,
a .gguf file, s3://, builtin:, a hub id) and runs through the generation seam (`make_generator`:
transformers, or vLLM on CUDA) with the Solver's prompt at temperature 0; its answer is the last complete
`\boxed{}` of the output, None when there is none (that question is then not checked).
"""

from __future__ import annotations

import logging

from rzero_worker.task import ModelInput, OracleModelSettings

log = logging.getLogger(__name__)


class ModelOracle:
    """Greedy answers of one model; the model is loaded on the first call, not at construction."""

    name = "model"

    def __init__(self, settings: OracleModelSettings, ctx, *, generator=None):
        self.settings = settings
        self.ctx = ctx  # a PhaseContext: storage, cache dir and the task's device and storage location
        self._generator = generator

    def _load(self):
        from rzero_worker.generation import make_generator
        from rzero_worker.models import resolve_model

        task = self.ctx.task
        local = resolve_model(
            ModelInput(source=self.settings.source), self.ctx.storage, self.ctx.cache_dir,
            field="oracle.model", s3_location=task.storage,
        )
        return make_generator(local, task.device, cache_dir=self.ctx.cache_dir, batch_size=self.settings.batch_size)

    def answer(self, questions: list[str]) -> list[str | None]:
        from rzero_worker.generation.base import greedy_replies
        from rzero_worker.grading import extract_boxed
        from rzero_worker.prompts import solver_messages

        if not questions:
            return []
        if self._generator is None:
            self._generator = self._load()
        replies = greedy_replies(self._generator, [solver_messages(question) for question in questions],
                                 max_tokens=self.settings.max_tokens, batch_size=self.settings.batch_size, log=log,
                                 what="oracle model answered questions")
        return [extract_boxed(reply) if reply is not None else None for reply in replies]
