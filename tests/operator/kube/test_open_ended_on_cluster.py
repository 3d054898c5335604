"""An open-ended run on a cluster: the real operator against the kmock emulator, a test driver playing the Job
controller. The scoring Jobs get the Verifier (task and API key by Secret reference), the evaluate Job the oracle
for the win rate; the judge report and the win rate reach status.iterationHistory."""

from __future__ import annotations

from support.kube import PLAUSIBLE_METRICS, tiny_spec, wait_for

VERIFIER = {"endpoint": {"url": "https://verifier.example.com/v1", "model": "judge-8b", "apiKeyEnv": "VERIFIER_KEY",
                         "apiKeySecret": {"name": "verifier-key", "key": "token"}}}
ORACLE = {"arithmetic": False, "endpoint": {"url": "https://oracle.example.com/v1", "model": "judge-70b",
                                            "apiKeyEnv": "ORACLE_KEY", "apiKeySecret": {"name": "oracle-key",
                                                                                        "key": "token"}}}
TASK = {"kind": "open-ended", "description": "short emails", "rubric": ["clarity", "tone"],
        "heldOut": {"uri": "s3://rzero-test/held-out.jsonl"}}
JUDGE = {"source": "endpoint", "judged": 40, "scored": 36, "unparsable": 3, "unavailable": 1, "tasks_scored": 10,
         "tasks_collapsed": 2, "score_sum": 18.0, "length_moments": [36, 3600, 18, 400000, 10, 1900],
         "requests": 41, "retries": 1, "malformed": 1, "failed": 0, "over_budget": 0}
LABEL = {"questions": 10, "kept": 6, "dropped": {"no_spread": 0, "score_collapse": 2, "saturated": 2},
         "mean_spread": 0.3, "score_histogram": [2, 2, 2, 2, 2, 0, 0, 0, 0, 0], "judge": JUDGE}
WIN = {"tasks": 20, "wins": 11, "losses": 5, "ties": 4, "unjudged": 0, "unparsable": 1, "tie_verdicts": 3,
       "decided": 36, "first_chosen": 24, "order_decided": 4, "source": "endpoint", "requests": 40}


def key_names(job: dict) -> set[str]:
    return {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if "valueFrom" in e
            and "secretKeyRef" in e["valueFrom"] and e["name"] in ("VERIFIER_KEY", "ORACLE_KEY")}


def test_an_open_ended_run_gets_its_judges_and_records_the_judge_report_and_win_rate(
    operators, job_driver, tmp_path, kube_emulator
):
    operators.start()
    job_driver.create_run("demo", tiny_spec(tmp_path, iterations=1, task=TASK, verifier=VERIFIER, oracle=ORACLE))
    base = job_driver.wait_for_job("demo-i000-evaluate-a1")
    assert "winRate" not in job_driver.tasks(base)[0]  # iteration 0 is the baseline: nothing to compare
    assert key_names(base) == set()  # no win rate to judge: the oracle's key is not granted
    job_driver.succeed(base)
    for phase in ("challenger", "generate", "label", "solver"):
        job = job_driver.wait_for_job(f"demo-i001-{phase}-a1")
        [task] = job_driver.tasks(job)
        assert task["openEnded"]["task"]["rubric"] == ["clarity", "tone"]
        assert task["openEnded"]["judge"]["endpoint"]["model"] == "judge-8b"
        assert key_names(job) == (set() if phase == "generate" else {"VERIFIER_KEY"})
        job_driver.succeed(job, LABEL if phase == "label" else None)
    evaluate = job_driver.wait_for_job("demo-i001-evaluate-a1")
    [task] = job_driver.tasks(evaluate)
    assert task["winRate"]["judge"]["endpoint"]["model"] == "judge-70b" and key_names(evaluate) == {"ORACLE_KEY"}
    job_driver.succeed(evaluate, {**PLAUSIBLE_METRICS["evaluate"], "win_rate": WIN})

    status = wait_for(lambda: (s := job_driver.status("demo")) and s.get("phase") == "Succeeded" and s, 10,
                      "the run to succeed")
    record = status["iterationHistory"][1]
    assert (record["judge"]["scored"], record["judge"]["unparsable"], record["judge"]["scoreCollapse"]) == (36, 3, 0.2)
    assert record["dropReasons"] == {"no_spread": 0, "score_collapse": 2, "saturated": 2}
    assert record["winRate"]["winRate"] == 13 / 20 and record["winRate"]["firstPositionShare"] == 24 / 36
    assert record["winRate"]["winRateCi95"][0] < 0.65 < record["winRate"]["winRateCi95"][1]
    posted = [r.data for r in kube_emulator.requests()
              if r.method == "POST" and r.path == f"/api/v1/namespaces/{job_driver.namespace}/events"]
    texts = {e["reason"]: e["message"] for e in posted if e["reason"] in ("JudgeReport", "WinRate")}
    assert texts["JudgeReport"].startswith("iteration 1: the Verifier scored 36 of 40 responses (unparsable 3")
    assert texts["WinRate"].startswith("iteration 1: win rate 65.0% [")
