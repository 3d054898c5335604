"""kubectl's reading of plain YAML scalars (YAML 1.1, go-yaml v2), as measured with kubectl 1.33 against a real
API server (tests/operator/kube/server/test_validate_vs_server.py checks every row of TOKENS there)."""

from __future__ import annotations

import pytest

from rzero_worker.yaml_scalars import NON_FINITE, as_kubectl_sends, kubectl_reading


@pytest.mark.parametrize(("text", "kubectl"), [
    ("y", True), ("Y", True), ("yes", True), ("on", True), ("ON", True), ("True", True),
    ("n", False), ("No", False), ("off", False), ("OFF", False), ("false", False),
    ("", None), ("~", None), ("null", None), ("NULL", None),
    ("010", 8), ("0o17", 15), ("0x10", 16), ("0X1f", 31), ("0b11", 3), ("-0b11", -3), ("1_000", 1000),
    ("+3", 3), ("-0", 0), ("00", 0), ("08", 8.0), ("2**63", "2**63"),
    ("9223372036854775807", 2**63 - 1), ("9223372036854775808", 2**63), ("18446744073709551616", 2.0**64),
    ("3.0", 3.0), ("3.", 3.0), ("1e1", 10.0), ("01.5", 1.5), ("1_0.5", 10.5), (".5", 0.5), ("+.5", 0.5),
    (".nan", NON_FINITE), ("-.inf", NON_FINITE), ("+.Inf", NON_FINITE), ("1e400", "1e400"),
    ("2001-12-14", "2001-12-14"), ("1:20", "1:20"), ("0x", "0x"), ("abc", "abc"), ("-", "-"), (".", "."),
    ("1" * 5000, "1" * 5000),
])
def test_plain_scalars_read_as_go_yaml_v2_reads_them(text, kubectl):
    value = kubectl_reading(text)
    assert value == kubectl and type(value) is type(kubectl)


@pytest.mark.parametrize(("number", "sent"), [
    (3.0, 3), (-0.0, 0), (30e-1, 3), (1.5, 1.5), (2.0**53, 2**53), (float(2**63 - 1024), 9223372036854775000),
    (2.0**63, 2.0**63), (1e20, 1e20), (1e21, 1e21), (1e-7, 1e-7),
])
def test_kubectl_sends_an_integral_number_as_an_integer_in_its_shortest_digits(number, sent):
    value = as_kubectl_sends(number)
    assert value == sent and type(value) is type(sent)
