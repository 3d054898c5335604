"""`rzero validate` and the API server agree: on a generated corpus of manifests (support.manifest_corpus), the
pydantic models (`validate_manifest`) and the CRD (schema + CEL rules + the server's own metadata checks,
modelled by `support.crd_server`) give the same verdict on every case. The same corpus goes to a real API
server in kube/server/test_validate_vs_server.py.
"""

from __future__ import annotations

import copy

import pytest

from rzero_operator.api.crd import build_crd
from rzero_operator.validate import InvalidManifest, validate_manifest
from support.crd_server import ApiServerModel
from support.manifest_corpus import corpus, reported_cases

pytest.importorskip("celpy", reason="the corpus test evaluates the CRD's CEL rules with cel-python (test extra)")

CORPUS = corpus()


@pytest.fixture(scope="module")
def server() -> ApiServerModel:
    return ApiServerModel(build_crd())


def pydantic_verdict(doc: dict) -> list[str]:
    try:
        validate_manifest(copy.deepcopy(doc))
    except InvalidManifest as invalid:
        return invalid.errors
    return []


@pytest.fixture(scope="module")
def verdicts(server) -> list[tuple[str, list[str], list[str]]]:
    """(case, rzero validate's errors, the server's errors) for the whole corpus."""
    return [(label, pydantic_verdict(doc), server.create(doc)) for label, doc in CORPUS]


def test_the_corpus_is_large_and_has_both_verdicts(verdicts):
    accepted = sum(1 for _, _, theirs in verdicts if not theirs)
    assert len(verdicts) >= 800, len(verdicts)
    assert 100 <= accepted <= len(verdicts) - 300, (accepted, len(verdicts))


def test_pydantic_and_the_api_server_agree_on_every_case(verdicts):
    disagreements = [f"{label}: rzero validate says {ours or 'valid'}, the server {theirs or 'valid'}"
                      for label, ours, theirs in verdicts if bool(ours) != bool(theirs)]
    assert disagreements == [], "\n".join(disagreements[:40]) + f"\n({len(disagreements)} of {len(verdicts)})"


@pytest.mark.parametrize(("label", "doc"), reported_cases(), ids=[label for label, _ in reported_cases()])
def test_each_reported_case_gets_the_servers_verdict(server, label, doc):
    # A node selector key is left to the API server's Job validation (kube/test_api_refusals.py): the CRD can
    # check map keys only by CEL, and a regex over them exceeds the server's CEL cost budget.
    expected_valid = label in ("generateName without name", "status block", "garbage status block",
                               "nodeSelector key not a label key", "phase nodeSelector bad key")
    assert (pydantic_verdict(doc) == []) is expected_valid, pydantic_verdict(doc)
    assert (server.create(doc) == []) is expected_valid, server.create(doc)
