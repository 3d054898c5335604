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


def test_label_accuracy_its_interval_and_n_or_the_proxies_and_what_watching_the_run_found():
    status = {"phase": "Suspended", "iteration": 2, "storageBytes": 12_500_000,
              "bestIteration": {"iteration": 1, "score": 0.42, "solverCheckpoint": "/runs/x/iter-001/solver"},
              "approval": {"gate": "2", "iteration": 2, "after": "label", "auditSample": "/runs/x/iter-002/label"},
              "approvals": [{"gate": "1", "iteration": 1, "after": "label", "decision": "Approved", "by": "alice",
                             "at": "2025-01-01T00:00:00Z", "reason": "spot-checked"}],
              "iterationHistory": [
                  {"iteration": 1, "labelAccuracy": 0.8, "labelAccuracyCi95": [0.67, 0.89], "oracleChecked": 50,
                   "answerEntropy": 1.234, "bandEdgeShare": 0.3},
                  {"iteration": 2, "answerEntropy": 1.5, "bandEdgeShare": 0.25}]}
    lines = format_status_table("demo", status).splitlines()
    row1 = next(line for line in lines if line.startswith("1 ")).split()
    row2 = next(line for line in lines if line.startswith("2 ")).split()
    assert row1[6:9] == ["0.80[0.67-0.89]n=50", "1.23", "0.30"]
    assert row2[6:9] == ["-", "1.50", "0.25"]
    assert "best iteration: 1 (mean score 0.420), solver /runs/x/iter-001/solver" in lines
    assert any(line.startswith("waiting for approval: iteration 2 after label") for line in lines)
    assert "gate 1: Approved by alice at 2025-01-01T00:00:00Z (spot-checked)" in lines
    assert "storage: 12.5 MB in committed outputs" in lines


def test_the_verifiers_veto_is_one_line_per_iteration_with_its_effect_on_label_accuracy():
    veto = {"judged": 40, "approved": 30, "rejected": 8, "unparsable": 1, "unavailable": 1, "vetoed": 10,
            "checkedBefore": 40, "correctBefore": 27, "accuracyBefore": 0.675, "ci95Before": [0.52, 0.799],
            "checkedAfter": 30, "correctAfter": 24, "accuracyAfter": 0.8, "ci95After": [0.627, 0.905],
            "correctVetoed": 3, "wrongVetoed": 7, "verifierAccuracy": 0.744, "oracleCompared": 39}
    status = {"phase": "Running", "iteration": 2, "iterationHistory": [
        {"iteration": 1, "verifier": veto},
        {"iteration": 2, "verifier": {"judged": 5, "approved": 5}}]}
    lines = format_status_table("demo", status).splitlines()
    assert ("veto, iteration 1: the Verifier vetoed 10 of 40 kept labels (rejected 8, unparsable 1, unavailable 1); "
            "label accuracy 67.5% [52.0%, 79.9%] before (n=40), 80.0% [62.7%, 90.5%] after (n=30); 3 correct and 7 "
            "wrong labels vetoed; Verifier agrees with the oracle on 74.4% of 39") in lines
    assert ("veto, iteration 2: the Verifier vetoed 0 of 5 kept labels (rejected 0, unparsable 0, unavailable 0); "
            "no oracle checked them") in lines


def test_a_trained_verifier_is_one_line_per_iteration_and_its_phase_sits_after_the_label_phase():
    done = {"state": "Succeeded", "attempts": 1}
    trained = {"examples": 30, "trainExamples": 24, "heldOut": 6, "accuracyBefore": 0.5, "accuracyAfter": 2 / 3,
               "rewardStd": 0.25, "weightChange": 3e-5}
    status = {"phase": "Running", "iteration": 1, "iterationHistory": [
        {"iteration": 1, "verifierTraining": trained,
         "phases": {name: done for name in sorted(["challenger", "generate", "label", "verifier", "solver"])}}]}
    lines = format_status_table("demo", status).splitlines()
    assert ("verifier, iteration 1: the Verifier trained on 24 of 30 examples; held-out accuracy 50.0% before, 66.7% "
            "after (n=6); reward spread 0.250, weight change 3.00e-05") in lines
    assert next(line for line in lines if line.startswith("1 ")).endswith("label✓ verifier✓ solver✓")
