r"""Labelling: rzero's votes against the R-Zero reference's own labelling loop, on the same Solver outputs.

    .venv/bin/python bench/grading.py [--questions 1319] [--samples 10] [--timeout 10] [--repeat 3] [--seed 0]

Answer sets (tests/support/gsm8k_answers.py, built from the GSM8K gold answers in
../shared/data/gsm8k-test.jsonl or --data): the headline is `realistic_set`, Solver outputs for GSM8K questions
in the proportions stated there (mostly boxed integers; some units, decimals, fractions, unboxed and cut-off
outputs); `notation_set` is a stress set of notations; `hang_set` is three realistic questions each with one
answer that makes mathruler's sympy hang, measured on its own (its time is the timeouts').

baseline: the reference's labelling loop, re-implemented here as a clearly labelled baseline
(R-Zero 5699329 `question_evaluate/evaluate.py:115-166`), in one process: answers = mathruler 0.1.0's
`extract_boxed_content` of each output, empty ones dropped; each answer walks the existing classes in order:
the same string, or both containing "no ", joins; else mathruler's `grade_answer` in both orders, each call
with its own timeout (the reference: stopit, 10 s, `evaluate.py:137,147`; here a signal timer of --timeout
seconds), a timeout skipping that pair (`continue`, `evaluate.py:140,150`); label = first class with the
largest count, score = count / non-empty answers (`evaluate.py:164-166`); p-hat = count / m (the Challenger's
server, `start_vllm_server.py:217`). It runs in a child process with a wall-clock guard (--baseline-limit);
if the guard fires, the figures cover the questions it finished and "baseline_complete" is false.
ours, in each mode (`labeling.vote` with its default checker): reference = the reference reading and
mathruler; boxed-only = rzero's reading and math-verify. `vote_many` on a fresh `GradingPool` (default
workers, the run's limits for --timeout). Pool start-up is timed separately (a labelling phase starts it once).
Times on the realistic set are the best of --repeat runs, for both sides (a fresh pool each run).

agreement (per mode, against the baseline): `label_agreement` = share of questions with the same label
(the majority class's first answer, "None" included; a question one side cannot label counts as None),
`score_agreement` = same labelling score, `p_hat_agreement` = same Challenger p-hat.
checkers: every (gold, answer) pair of the realistic and notation sets, graded by both checkers (gold first,
as the Solver's reward grades), by category of the answer's notation: how often they agree and how often
each is right (the answer's notation says whether it is the gold value). The last line is one JSON object;
its "mode" names the mode of the headline figures, "answer_set" the set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "worker"))
sys.path.insert(0, str(REPO / "tests"))

from rzero_worker.grading import GradingPool, Reading, vote_many  # noqa: E402
from rzero_worker.task import Grading  # noqa: E402
from support.gsm8k_answers import DEFAULT_DATA, hang_set, load_golds, notation_set, realistic_set  # noqa: E402

MODES = {"reference": "mathruler", "boxed-only": "math-verify"}


# --------------------------------------------------------------------------------------------------
# the baseline: the reference's labelling loop (question_evaluate/evaluate.py:115-166), see the module notes


class _Timeout(BaseException):
    pass


_fired = [False]  # mathruler's bare `except:` swallows the timer's exception (stopit's fares the same): a flag


def _alarm(signum, frame):
    _fired[0] = True
    raise _Timeout()


def reference_vote(outputs: list[str], extract, grade_answer, timeout_s: float) -> tuple[str | None, float, float, int]:
    """(label, score over non-empty answers, p-hat over all m, timeouts) as the reference labelling loop."""
    def timed(a: str, b: str):
        _fired[0] = False
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            verdict = grade_answer(a, b)
        except _Timeout:
            return "TIMED_OUT"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return "TIMED_OUT" if _fired[0] else verdict

    results = [answer for answer in (extract(output) for output in outputs) if answer]
    counts: dict[str, int] = {}
    timeouts = 0
    for result in results:
        matched = False
        for existing in counts:
            if result == existing or ("no " in result.lower() and "no " in existing.lower()):
                counts[existing] += 1
                matched = True
                break
            first = timed(result, existing)
            if first == "TIMED_OUT":
                timeouts += 1
                continue  # evaluate.py:140: skip to the next class
            second = first or timed(existing, result)
            if second == "TIMED_OUT":
                timeouts += 1
                continue
            if second:
                counts[existing] += 1
                matched = True
                break
        if not matched:
            counts[result] = 1
    if not counts:
        return None, 0.0, 0.0, timeouts
    label = max(counts, key=counts.get)
    return label, counts[label] / len(results), counts[label] / len(outputs), timeouts


def baseline_child(conn, questions, timeout_s: float) -> None:
    from mathruler.grader import extract_boxed_content, grade_answer

    signal.signal(signal.SIGALRM, _alarm)
    grade_answer("1/2", "0.5")  # imports and first-call set-up are not timed, as for our pool
    conn.send(("ready", time.perf_counter()))
    for outputs in questions:
        conn.send(("vote", reference_vote(outputs, extract_boxed_content, grade_answer, timeout_s)))
    conn.send(("done", time.perf_counter()))


def run_baseline(questions, timeout_s: float, limit_s: float) -> dict:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=baseline_child, args=(child, questions, timeout_s), daemon=True)
    process.start()
    _, started = parent.recv()
    votes, finished = [], None
    deadline = time.monotonic() + limit_s
    while finished is None and parent.poll(max(0.0, deadline - time.monotonic())):
        message = parent.recv()
        if message[0] == "done":
            finished = message[1]
        else:
            votes.append(message[1])
    ended = finished if finished is not None else time.perf_counter()
    if process.is_alive() and finished is None:
        process.kill()
    process.join(5)
    return {"votes": votes, "seconds": ended - started, "complete": finished is not None}


# --------------------------------------------------------------------------------------------------
# ours


def run_ours(questions, mode: str, workers: int | None, timeout_s: float) -> dict:
    grading = Grading(vote=mode, checker=MODES[mode], timeout_s=timeout_s)
    reading = Reading(mode)
    started = time.perf_counter()
    with GradingPool(workers=workers, **grading.pool_limits()) as pool:
        pool.equivalent([("1", "x")])  # wait until the workers are up
        ready = time.perf_counter()
        answers = [[reading.answer(output) for output in outputs] for outputs in questions]
        votes = vote_many(answers, pool, mode)
        done = time.perf_counter()
        stats = pool.stats
    return {"votes": votes, "seconds": done - ready, "start_s": ready - started, "stats": stats}


def shown_label(vote) -> str | None:
    """The majority class's first answer as the reference writes it ("None" for the class None)."""
    return "None" if vote.majority_none else vote.label if vote.classes else None


def agreement(ours: dict, baseline: dict) -> dict:
    covered = len(baseline["votes"])
    pairs = list(zip(ours["votes"][:covered], baseline["votes"]))
    share = lambda same: round(sum(same) / covered, 4) if covered else None  # noqa: E731
    return {
        "label_agreement": share(shown_label(vote) == base[0] for vote, base in pairs),
        "score_agreement": share(abs(vote.share_of_valid - base[1]) < 1e-9 for vote, base in pairs),
        "p_hat_agreement": share(abs(vote.score - base[2]) < 1e-9 for vote, base in pairs),
        "undecidable_labels": sum(vote.label_undecidable for vote in ours["votes"]),
        "disagreements": [(i, shown_label(vote), base[0]) for i, (vote, base) in enumerate(pairs)
                          if shown_label(vote) != base[0]][:10],
    }


def mode_report(mode: str, ours: dict, baseline: dict, samples: int) -> dict:
    answers = len(ours["votes"]) * samples
    ours_rate = answers / ours["seconds"]
    base_rate = len(baseline["votes"]) * samples / baseline["seconds"] if baseline["seconds"] > 0 else float("nan")
    return {
        "mode": mode,
        "checker": MODES[mode],
        **agreement(ours, baseline),
        "speedup": round(ours_rate / base_rate, 2),
        "speedup_incl_start": round(answers / (ours["seconds"] + ours["start_s"]) / base_rate, 2),
        "answers_per_s": round(ours_rate, 1),
        "ours_s": round(ours["seconds"], 3),
        "baseline_s": round(baseline["seconds"], 3),
        "baseline_complete": baseline["complete"],
        "baseline_timeouts": sum(vote[3] for vote in baseline["votes"]),
        "pool_start_s": round(ours["start_s"], 3),
        "ours_timeouts": ours["stats"].timeouts,
        "ours_restarts": ours["stats"].restarts,
        "ours_worker_items": ours["stats"].checker_calls,
        "ours_forms": ours["stats"].forms,
        "ours_pairs": ours["stats"].pairs,
    }


def best_of(repeat: int, run) -> dict:
    """The fastest of `repeat` runs (each from scratch), with every run's seconds."""
    runs = [run() for _ in range(max(1, repeat))]
    best = min(runs, key=lambda result: result["seconds"])
    return {**best, "runs_s": [round(result["seconds"], 3) for result in runs]}


def measured(questions, modes: tuple[str, ...], args, repeat: int = 1) -> dict[str, dict]:
    """Each mode's report on one set (the reference's loop is mode-blind: it runs once per repeat)."""
    baseline = best_of(repeat, lambda: run_baseline(questions, args.timeout, args.baseline_limit))
    reports = {}
    for mode in modes:
        ours = best_of(repeat, lambda: run_ours(questions, mode, args.workers, args.timeout))
        print(f"{len(questions)} questions, {mode}: ours {ours['runs_s']} s (+{ours['start_s']:.2f} s pool start), "
              f"the reference's loop {baseline['runs_s']} s")
        reports[mode] = {**mode_report(mode, ours, baseline, args.samples), "questions": len(questions),
                         "ours_runs_s": ours["runs_s"], "baseline_runs_s": baseline["runs_s"]}
    return reports


# --------------------------------------------------------------------------------------------------
# the two checkers on the sets' (gold, answer) pairs


def checker_comparison(pairs: list[list[tuple]], workers: int | None, timeout_s: float) -> dict:
    flat = [pair for question in pairs for pair in question]
    verdicts = {}
    for checker in ("mathruler", "math-verify"):
        limits = Grading(checker=checker, timeout_s=timeout_s).pool_limits()
        with GradingPool(workers=workers, **limits) as pool:
            verdicts[checker] = pool.equivalent([(gold, answer) for gold, _, answer, _ in flat], directed=True)
    table: dict[str, dict] = {}
    for (_, category, _, truth), ruler, verify in zip(flat, verdicts["mathruler"], verdicts["math-verify"]):
        row = table.setdefault(category, {"pairs": 0, "agree": 0, "mathruler_right": 0, "math_verify_right": 0})
        row["pairs"] += 1
        row["agree"] += bool(ruler) == bool(verify)
        row["mathruler_right"] += bool(ruler) == truth
        row["math_verify_right"] += bool(verify) == truth
    total = {key: sum(row[key] for row in table.values()) for key in ("pairs", "agree", "mathruler_right", "math_verify_right")}
    return {"by_category": table, "total": total}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1319, help="GSM8K test questions (all 1,319)")
    parser.add_argument("--stress-questions", type=int, default=300, help="questions of the notation set")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per comparison (the reference's 10)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side on the realistic set; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baseline-limit", type=float, default=600.0)
    args = parser.parse_args(argv)

    golds = load_golds(args.data, args.questions)
    realistic, realistic_pairs = realistic_set(golds, args.samples, args.seed)
    notation, notation_pairs = notation_set(golds[: args.stress_questions], args.samples, args.seed)
    hangs, _ = hang_set(golds, args.samples, args.seed)
    on_realistic = measured(realistic, tuple(MODES), args, args.repeat)
    stress = measured(notation, ("reference",), args)["reference"]
    hang = measured(hangs, ("reference",), args)["reference"]
    checkers = {name: checker_comparison(pairs, args.workers, args.timeout)
                for name, pairs in (("realistic", realistic_pairs), ("notation", notation_pairs))}
    for name, table in checkers.items():
        for category, row in sorted(table["by_category"].items()):
            print(f"  {name:9s} {category:20s} {row}")
    report = {
        **on_realistic["reference"],
        "answer_set": "gsm8k realistic (tests/support/gsm8k_answers.py)",
        "samples_per_question": args.samples,
        "repeat": args.repeat,
        "hang_cases": hang,
        "notation_set": stress,
        "other_mode": on_realistic["boxed-only"],
        "checkers": checkers,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
