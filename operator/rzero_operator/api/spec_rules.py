"""RZeroRunSpec's rules that read more than one field: each raises ValueError("field: message"), the field named
as the user wrote it. They run in this order after every field has validated; the first broken rule is the
error `rzero validate` and the operator report (the same words, from the same function)."""

from __future__ import annotations

from typing import Callable

from .openended import check_open_ended


def warmup_has_one_base_model(spec) -> None:
    if spec.warmup.enabled and spec.solver_source is not None:
        raise ValueError("warmup.enabled: the warm-up trains the one base model of both roles; "
                         "it cannot be combined with solverSource")


def shards_not_above_questions(spec) -> None:
    if spec.sharding.generate > spec.generation.num_questions:
        raise ValueError("sharding.generate: must not exceed generation.numQuestions (a shard would be empty)")


def document_labels_need_a_corpus(spec) -> None:
    if spec.labeling.label == "document" and spec.corpus is None:
        raise ValueError("labeling.label: document labels are the grounded Challenger's answers; they need "
                         "spec.corpus")


def variance_needs_a_corpus(spec) -> None:
    if spec.challenger.objective == "variance" and spec.corpus is None:
        raise ValueError("challenger.objective: the variance reward scores the Solver's pass rate against the "
                         "Challenger's document answer; it needs spec.corpus")


def one_key_per_variable(spec) -> None:
    oracle, verifier = spec.oracle.endpoint, spec.verifier.endpoint
    if (oracle is not None and verifier is not None and oracle.api_key_env == verifier.api_key_env
            and oracle.api_key_secret is not None and verifier.api_key_secret is not None
            and oracle.api_key_secret != verifier.api_key_secret):
        raise ValueError("verifier.endpoint.apiKeyEnv: the oracle endpoint reads another Secret key into the "
                         "same variable; name another variable")


def trained_verifier_vetoes(spec) -> None:
    if spec.verifier.mode == "trained" and spec.labeling.verifier != "veto":
        raise ValueError("verifier.mode: a trained Verifier is used by the veto; set labeling.verifier: veto")


CROSS_FIELD_RULES: tuple[Callable[[object], None], ...] = (
    warmup_has_one_base_model, shards_not_above_questions, document_labels_need_a_corpus, variance_needs_a_corpus,
    one_key_per_variable, check_open_ended, trained_verifier_vetoes,
)


def check_cross_field_rules(spec) -> None:
    for rule in CROSS_FIELD_RULES:
        rule(spec)
