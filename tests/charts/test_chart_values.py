"""values.yaml and values.schema.json: the defaults validate, and the schema refuses unsafe or mistyped values."""

import json

import jsonschema
import pytest
import yaml

from .helm_render import CHART, deep_merge


def schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def defaults() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def errors_for(overrides: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    return [error.message for error in validator.iter_errors(deep_merge(defaults(), overrides))]


def test_schema_is_a_valid_draft_07_schema():
    body = schema()
    assert body["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(body)


def test_default_values_validate_against_the_schema():
    assert errors_for({}) == []


def test_every_top_level_value_is_described_by_the_schema():
    assert set(defaults()) <= set(schema()["properties"])


@pytest.mark.parametrize(
    "overrides",
    [
        {"watch": {"allNamespaces": True}},
        {"watch": {"namespaces": ["team-a", "team-b"]}},
        {"replicaCount": 2},
        {"replicaCount": 3, "leaderElection": {"leaseDurationSeconds": 15, "renewDeadlineSeconds": 10,
                                               "retryPeriodSeconds": 0.5}},
        {"leaderElection": {"enabled": False}},
        {"storage": {"endpoint": "https://minio.storage.svc:9000", "secretName": "rzero-s3"}},
        {"minio": {"enabled": True}, "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
        {"extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]},
    ],
)
def test_documented_configurations_validate(overrides):
    assert errors_for(overrides) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"imageTag": "x"}, "imageTag"),  # a typo at top level is refused, not ignored
        ({"image": {"pullPolicy": "Sometimes"}}, "Sometimes"),
        ({"watch": {"namespaces": ["Team_A"]}}, "Team_A"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "True was expected"),
        ({"podSecurityContext": {"runAsUser": 0}}, "minimum of 1"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "False was expected"),
        ({"securityContext": {"privileged": True}}, "False was expected"),
        ({"metrics": {"port": 80}}, "minimum of 1024"),  # a non-root process cannot bind below 1024
        ({"storage": {"endpoint": "minio:9000"}}, "minio:9000"),
        ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "True was expected"),  # 2 need an election
        ({"peering": {"enabled": True}}, "peering"),  # replaced by leaderElection: refused, not ignored
        ({"leaderElection": {"retryPeriodSeconds": 0}}, "less than or equal to the minimum of 0"),
        ({"extraEnv": [{"name": "1BAD", "value": "x"}]}, "1BAD"),
    ],
)
def test_schema_refuses_bad_values_naming_them(overrides, field):
    messages = errors_for(overrides)
    assert messages, f"{overrides} should be refused"
    assert any(field in message for message in messages), messages
