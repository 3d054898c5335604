r"""Labelling: rzero's votes against the R-Zero reference's own labelling loop, on the same Solver outputs.

    .venv/bin/python bench/grading.py [--questions 300] [--samples 10] [--timeout 10] [--seed 0]

The answer set is built from GSM8K gold answers (../shared/data/gsm8k-test.jsonl, or --data): for each
question m Solver OUTPUTS (texts), a majority of correct answers written in equivalent notations (`18`, `18.0`,
`\$18`, `18 \text{ dollars}`, `\frac{36}{2}`...; for some questions the value is halved to get `0.5`/`1/2`/
`\dfrac{1}{2}`-style fractions, and some use symbolic forms such as `2\sqrt{2}` vs `\sqrt{8}`), plus wrong
answers, and outputs as models write them: mostly `\boxed{...}` (sometimes after an intermediate box),
some `\fbox{}`, `\boxed {x}`, unboxed or truncated answers, and, in three questions, an answer that makes
mathruler's sympy compute a power tower (it hangs until a timeout).

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
mathruler; boxed-only = rzero's reading and math-verify. `vote_many` on a `GradingPool` (default workers, the
run's limits for --timeout). Pool start-up is timed separately (a labelling phase starts it once).

agreement (per mode, against the baseline): `label_agreement` = share of questions with the same label
(the majority class's first answer, "None" included; a question one side cannot label counts as None),
`score_agreement` = same labelling score, `p_hat_agreement` = same Challenger p-hat.
checkers: every (gold, answer) pair of the set, graded by both checkers (gold first, as the Solver's reward
grades), by category of the answer's notation: how often they agree and how often each is right (the
answer's notation says whether it is the gold value). The last line is one JSON object; its "mode" names
the mode of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))

from rzero_worker.grading import GradingPool, Reading, vote_many  # noqa: E402
from rzero_worker.task import Grading  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k-test.jsonl"
HANG_INPUTS = ["10**10**10 + x", "9**9**9**9 - y", "7**7**7**7*x"]  # sympy evaluates the tower in C
MODES = {"reference": "mathruler", "boxed-only": "math-verify"}


# --------------------------------------------------------------------------------------------------
# the answer set


def load_golds(path: Path, count: int) -> list[int]:
    golds = []
    with path.open() as lines:
        for line in lines:
            answer = json.loads(line)["answer"].split("####")[-1].strip().replace(",", "")
            if answer.lstrip("-").isdigit():
                golds.append(int(answer))
            if len(golds) == count:
                break
    return golds


# Each notation: (category, template). Categories name how the answer is written, for the checker comparison.
INTEGER = [("integer", "{v}"), ("decimal .0", "{v}.0"), ("dollar sign", "\\${v}"), ("text unit", "{v} \\text{{ dollars}}"),
           ("unreduced fraction", "\\frac{{{d}}}{{2}}"), ("thousands comma", "{v:,}"), ("assignment", "x = {v}")]
HALF = [("decimal", "{h}"), ("fraction", "\\frac{{{v}}}{{2}}"), ("slash fraction", "{v}/2"),
        ("dfrac", "\\dfrac{{{v}}}{{2}}"), ("trailing zeros", "{z}")]
SYMBOLIC = [("surd", "{v}\\sqrt{{2}}"), ("surd as one root", "\\sqrt{{{s}}}"), ("surd product", "\\sqrt{{2}} \\cdot {v}"),
            ("braceless surd", "{v} \\sqrt 2")]


def forms(family: list, value: int) -> list[tuple[str, str]]:
    return [(category, template.format(v=value, d=2 * value, h=f"{value / 2:g}", z=f"{value / 2:.2f}", s=2 * value * value))
            for category, template in family]


def wrong_answers(value: int, rng: random.Random) -> list[tuple[str, str]]:
    return [("wrong integer", str(value + rng.choice([-3, -2, -1, 1, 2, 5, 10]))), ("wrong integer", str(value * 2)),
            ("wrong fraction", f"\\frac{{{value}}}{{3}}"), ("wrong surd", f"\\sqrt{{{value + 1}}}"),
            ("wrong decimal", f"{value + 0.5}"), ("wrong expression", f"x+{value}")]


def write_output(answer: str | None, rng: random.Random) -> str:
    """A Solver output giving `answer` (None: it gives none), in the notations models use."""
    reasoning = "Let me work through this step by step. "
    if answer is None:
        return reasoning + "I could not finish the computation."
    roll = rng.random()
    if roll < 0.70:
        return reasoning + f"So the answer is $\\boxed{{{answer}}}$."
    if roll < 0.80:
        return reasoning + f"First \\boxed{{{rng.randint(1, 9)}}} for the first part; in all, $\\boxed{{{answer}}}$."
    if roll < 0.85:
        return reasoning + f"The answer is $\\fbox{{{answer}}}$."
    if roll < 0.90:
        return reasoning + f"The answer is $\\boxed {{{answer}}}$."
    if roll < 0.95:
        return reasoning + f"The answer is {answer}."
    return reasoning + f"So the answer is \\boxed{{{answer}"  # truncated


def answer_set(golds: list[int], samples: int, seed: int) -> tuple[list[list[str]], list[list[tuple]]]:
    """(Solver outputs per question, the (gold, category, answer, is the gold value) pairs behind them)."""
    rng = random.Random(seed)
    hang_at = set(rng.sample(range(len(golds)), k=min(len(HANG_INPUTS), len(golds))))
    outputs, pairs = [], []
    for index, gold in enumerate(golds):
        kind = rng.random()
        family = forms(HALF, gold) if kind < 0.25 else forms(SYMBOLIC, gold) if kind < 0.4 else forms(INTEGER, gold)
        correct = rng.randint(max(1, samples // 4), samples)
        wrong_pool = wrong_answers(gold, rng)
        chosen = [(*rng.choice(family), True) for _ in range(correct)]
        chosen += [(*rng.choice(wrong_pool), False) if rng.random() < 0.8 else None for _ in range(samples - correct)]
        rng.shuffle(chosen)
        if index in hang_at:
            chosen[rng.randrange(samples)] = ("hang", HANG_INPUTS[len([i for i in hang_at if i < index])], False)
        outputs.append([write_output(item[1] if item else None, rng) for item in chosen])
        pairs.append([(family[0][1], item[0], item[1], item[2]) for item in chosen if item and item[0] != "hang"])
    return outputs, pairs


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
        conn.send(reference_vote(outputs, extract_boxed_content, grade_answer, timeout_s))
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
            votes.append(message)
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


def mode_report(questions, mode: str, ours: dict, baseline: dict, samples: int) -> dict:
    answers = len(questions) * samples
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
        "pool_start_s": round(ours["start_s"], 3),
        "ours_timeouts": ours["stats"].timeouts,
        "ours_restarts": ours["stats"].restarts,
        "ours_checker_calls": ours["stats"].checker_calls,
        "ours_pairs": ours["stats"].pairs,
    }


# --------------------------------------------------------------------------------------------------
# the two checkers on the set's (gold, answer) pairs


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
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per comparison (the reference's 10)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baseline-limit", type=float, default=600.0)
    args = parser.parse_args(argv)

    questions, pairs = answer_set(load_golds(args.data, args.questions), args.samples, args.seed)
    runs = {mode: run_ours(questions, mode, args.workers, args.timeout) for mode in MODES}
    for mode, ours in runs.items():
        print(f"ours ({mode}): {len(questions)} questions in {ours['seconds']:.2f}s (+{ours['start_s']:.2f}s pool start)")
    baseline = run_baseline(questions, args.timeout, args.baseline_limit)
    print(f"baseline (the reference's loop): {len(baseline['votes'])} questions in {baseline['seconds']:.2f}s")
    reports = {mode: mode_report(questions, mode, ours, baseline, args.samples) for mode, ours in runs.items()}
    checkers = checker_comparison(pairs, args.workers, args.timeout)
    for category, row in sorted(checkers["by_category"].items()):
        print(f"  {category:20s} {row}")
    other = reports["boxed-only"]
    report = {
        **reports["reference"],
        "questions": len(questions),
        "samples_per_question": args.samples,
        "baseline_s": round(baseline["seconds"], 3),
        "baseline_complete": baseline["complete"],
        "baseline_timeouts": sum(vote[3] for vote in baseline["votes"]),
        "other_mode": other,
        "checkers": checkers,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
