"""The status table: one row per iteration, phases in the loop's order."""

from rzero_operator.local.table import format_status_table


def test_phases_are_listed_in_the_loops_order_whatever_order_the_state_file_kept():
    done = {"state": "Succeeded", "attempts": 1}
    status = {"phase": "Succeeded", "iteration": 1, "iterationHistory": [
        {"iteration": 1, "questionsGenerated": 16, "questionsValid": 3, "questionsKept": 1,
         "phases": {name: done for name in sorted(["challenger", "generate", "label", "solver", "evaluate"])}},
    ]}
    table = format_status_table("demo", status)
    row = next(line for line in table.splitlines() if line.startswith("1 "))
    assert row.split()[:4] == ["1", "16", "3", "1"]
    assert row.endswith("challenger✓ generate✓ label✓ solver✓ evaluate✓")
