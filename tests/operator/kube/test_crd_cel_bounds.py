"""Every CEL rule of the CRD sits under bounded lists, maps and strings.

One list without `maxItems` above a rule made the API server refuse the whole CRD (so `helm install` failed on
every current cluster). support/cel_bounds.py is the offline check; tests/operator/kube/server/
test_crd_on_server.py shows the real server refusing what it flags.
"""

from __future__ import annotations

from rzero_operator.api.crd import build_crd
from support.cel_bounds import unbounded_under_rules


def test_every_cel_rule_is_under_bounded_lists_maps_and_strings():
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert unbounded_under_rules(schema) == [], "add max_length (lists, strings) or a map bound to these fields"


def test_the_bounds_check_flags_an_unbounded_list_above_a_rule():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "x-kubernetes-validations": [{"rule": "true"}],
                                             "properties": {"name": {"type": "string", "maxLength": 8}}}}}}}}
    assert unbounded_under_rules(schema) == ["$.spec.items"]
    schema["properties"]["spec"]["properties"]["items"]["maxItems"] = 4
    assert unbounded_under_rules(schema) == []
