r"""Labelling throughput: majority votes of Q questions x m answers, ours against the reference's way.

    .venv/bin/python bench/grading.py [--questions 300] [--samples 10] [--timeout 2] [--seed 0]

The answer set is built from GSM8K gold answers (../shared/data/gsm8k-test.jsonl, or --data): for each
question a majority of correct answers written in equivalent notations (`18`, `18.0`, `\$18`,
`18 \text{ dollars}`, `\frac{36}{2}`...; for some questions the value is halved to get `0.5`/`1/2`/
`\dfrac{1}{2}`-style fractions, and some use symbolic forms such as `2\sqrt{2}` vs `\sqrt{8}`), plus wrong
answers, missing answers (None) and, in three questions, a known hang input (huge power towers).

baseline: the reference code's labelling loop (R-Zero `question_evaluate/evaluate.py`), in one process:
    drop empty answers; for each answer, walk the existing classes in order: same string, or both contain
    "no ", joins; else math-verify in both orders, each with its own timeout (the reference's 10 s
    stopit timeouts; here math-verify's signal timeouts of --timeout seconds) - a timeout skips that pair;
    label = first class with the largest count, score = count / non-empty answers.
    It runs in a child process with a wall-clock guard (--baseline-limit) so a hang cannot stop the bench;
    if the guard fires, the figures cover the questions it finished and "baseline_complete" is false.
ours: `vote_many` on a `GradingPool` (default workers, hard timeout --timeout). Pool start-up is timed
    separately (a labelling phase starts it once); `speedup_incl_start` includes it.

agreement: share of questions whose majority labels are the same string (both take the first-seen answer
of the majority class, so equal classes give equal strings).

adversarial mix (--adversarial-share, default 0.01; 0 skips it): the same answer set with that share of the
answers replaced by adversarial model outputs (tests/support/adversarial.py: LaTeX bombs, giant numbers,
unbalanced braces, non-UTF-8 text, 50 KB answers, in turn), voted by a fresh pool: answers/s, the share of
answers left ungradable, and whether it stayed within the stated bound (the clean run's time plus one
timeout per adversarial answer). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rzero_worker.grading import GradingPool, vote_many  # noqa: E402
from support.adversarial import ADVERSARIAL_CLASSES, GENERATORS  # noqa: E402  (the fault suite's answers)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k-test.jsonl"
HANG_INPUTS = [r"\dfrac{5^{5^{5^{5^5}}}}{5^{5^{5^5}}}", r"9^{9^{9^{9}}}", r"2^{2^{2^{2^{2^{2^{2}}}}}}"]


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


def integer_forms(value: int) -> list[str]:
    return [str(value), f"{value}.0", f"\\${value}", f"{value} \\text{{ dollars}}", f"\\frac{{{2 * value}}}{{2}}",
            f"{value:,}", f"x = {value}"]


def half_forms(value: int) -> list[str]:
    decimal = f"{value / 2:g}"
    return [decimal, f"\\frac{{{value}}}{{2}}", f"{value}/2", f"\\dfrac{{{value}}}{{2}}", f"{decimal}0"]


def symbolic_forms(value: int) -> list[str]:
    return [f"{value}\\sqrt{{2}}", f"\\sqrt{{{2 * value * value}}}", f"\\sqrt{{2}} \\cdot {value}",
            f"{value} \\sqrt 2"]


def wrong_answers(value: int, rng: random.Random) -> list[str]:
    return [str(value + rng.choice([-3, -2, -1, 1, 2, 5, 10])), str(value * 2), f"\\frac{{{value}}}{{3}}",
            f"\\sqrt{{{value + 1}}}", f"{value + 0.5}", f"x+{value}"]


def answer_set(golds: list[int], samples: int, seed: int) -> list[list[str | None]]:
    rng = random.Random(seed)
    hang_at = set(rng.sample(range(len(golds)), k=min(len(HANG_INPUTS), len(golds))))
    questions = []
    for index, gold in enumerate(golds):
        kind = rng.random()
        forms = half_forms(gold) if kind < 0.25 else symbolic_forms(gold) if kind < 0.4 else integer_forms(gold)
        correct = rng.randint(max(1, samples // 4), samples)
        wrong_pool = wrong_answers(gold, rng)
        answers = [rng.choice(forms) for _ in range(correct)]
        answers += [rng.choice(wrong_pool) if rng.random() < 0.8 else None for _ in range(samples - correct)]
        rng.shuffle(answers)
        if index in hang_at:
            answers[rng.randrange(samples)] = HANG_INPUTS[len([i for i in hang_at if i < index])]
        questions.append(answers)
    return questions


# --------------------------------------------------------------------------------------------------
# the baseline: the reference's loop


def reference_vote(raw_answers: list[str | None], parse, verify, timeout_s: int) -> tuple[str | None, float, int]:
    """(label, score over non-empty answers, timeouts) exactly as the reference labelling script decides."""
    def grade_answer(a: str, b: str) -> bool | str:
        seen = _TIMEOUT_LOG.count
        gold = parse("\\boxed{" + a + "}", parsing_timeout=timeout_s)
        target = parse("\\boxed{" + b + "}", parsing_timeout=timeout_s)
        verdict = verify(gold, target, timeout_seconds=timeout_s)
        return "TIMED_OUT" if _TIMEOUT_LOG.count > seen else verdict

    results = [answer for answer in raw_answers if answer]
    counts: dict[str, int] = {}
    timeouts = 0
    for result in results:
        matched = False
        for existing in counts:
            if result == existing or ("no " in result.lower() and "no " in existing.lower()):
                counts[existing] += 1
                matched = True
                break
            verdicts = []
            for a, b in ((result, existing), (existing, result)):
                verdict = grade_answer(a, b)
                timeouts += verdict == "TIMED_OUT"
                verdicts.append(verdict)
                if verdict is True or verdict == "TIMED_OUT":
                    break  # the reference moves on after a match or a timeout
            if verdicts[-1] is True:
                counts[existing] += 1
                matched = True
                break
        if not matched:
            counts[result] = 1
    if not counts:
        return None, 0.0, timeouts
    label = max(counts, key=counts.get)
    return label, counts[label] / len(results), timeouts


class _TimeoutCounter(logging.Handler):
    """math-verify reports its (signal) timeouts only as log warnings; count them."""

    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Timeout" in record.getMessage():
            type(self).count += 1


_TIMEOUT_LOG = _TimeoutCounter


def baseline_child(conn, questions, timeout_s: int) -> None:
    from math_verify import parse, verify

    log = logging.getLogger("math_verify")
    log.addHandler(_TimeoutCounter())
    log.propagate = False
    conn.send(("ready", time.perf_counter()))
    for answers in questions:
        conn.send(reference_vote(answers, parse, verify, timeout_s))
    conn.send(("done", time.perf_counter()))


def run_baseline(questions, timeout_s: int, limit_s: float) -> dict:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=baseline_child, args=(child, questions, timeout_s), daemon=True)
    process.start()
    _, started = parent.recv()  # imports are not timed, as for our pool
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


def run_ours(questions, workers: int | None, timeout_s: float) -> dict:
    started = time.perf_counter()
    with GradingPool(workers=workers, timeout_s=timeout_s) as pool:
        pool.equivalent([("1", "x")])  # wait until the workers are up
        ready = time.perf_counter()
        votes = vote_many(questions, pool)
        done = time.perf_counter()
        stats = pool.stats
    return {"votes": votes, "seconds": done - ready, "start_s": ready - started, "stats": stats}


def summarize(questions, ours: dict, baseline: dict, samples: int) -> dict:
    covered = len(baseline["votes"])
    answers = len(questions) * samples
    ours_rate = answers / ours["seconds"]
    base_rate = covered * samples / baseline["seconds"] if baseline["seconds"] > 0 else float("nan")
    same_label = sum(ours["votes"][i].label == baseline["votes"][i][0] for i in range(covered))
    same_score = sum(abs(ours["votes"][i].share_of_valid - baseline["votes"][i][1]) < 1e-9 for i in range(covered))
    start_rate = answers / (ours["seconds"] + ours["start_s"])
    return {
        "speedup": round(ours_rate / base_rate, 2),
        "speedup_incl_start": round(start_rate / base_rate, 2),
        "agreement": round(same_label / covered, 4) if covered else None,
        "score_agreement": round(same_score / covered, 4) if covered else None,
        "answers_per_s": round(ours_rate, 1),
        "baseline_answers_per_s": round(base_rate, 1),
        "questions": len(questions),
        "samples_per_question": samples,
        "ours_s": round(ours["seconds"], 3),
        "pool_start_s": round(ours["start_s"], 3),
        "baseline_s": round(baseline["seconds"], 3),
        "baseline_complete": baseline["complete"],
        "baseline_timeouts": sum(vote[2] for vote in baseline["votes"]),
        "ours_timeouts": ours["stats"].timeouts,
        "ours_restarts": ours["stats"].restarts,
        "ours_ungradable_answers": sum(vote.ungradable for vote in ours["votes"]),
        "ours_math_verify_calls": ours["stats"].math_verify,
        "ours_pairs": ours["stats"].pairs,
        "hang": not baseline["complete"],
    }


def with_adversarial(questions, share: float, seed: int) -> tuple[list[list[str | None]], int]:
    """A copy of the answer set with `share` of all answers replaced by adversarial ones (classes in turn)."""
    rng = random.Random(seed + 1)
    mixed = [list(answers) for answers in questions]
    slots = [(q, s) for q in range(len(mixed)) for s in range(len(mixed[q]))]
    chosen = rng.sample(slots, max(1, round(share * len(slots))))
    for index, (question, sample) in enumerate(chosen):
        mixed[question][sample] = GENERATORS[ADVERSARIAL_CLASSES[index % len(ADVERSARIAL_CLASSES)]](rng)
    return mixed, len(chosen)


def run_adversarial(questions, share: float, seed: int, workers: int | None, timeout_s: float, clean: dict) -> dict:
    mixed, count = with_adversarial(questions, share, seed)
    answers = sum(len(answers) for answers in mixed)
    ours = run_ours(mixed, workers, timeout_s)
    bound = clean["seconds"] + count * timeout_s
    return {
        "adversarial_share": round(count / answers, 4),
        "adversarial_answers": count,
        "adversarial_answers_per_s": round(answers / ours["seconds"], 1),
        "adversarial_ungradable_share": round(sum(vote.ungradable for vote in ours["votes"]) / answers, 4),
        "clean_ungradable_share": round(sum(vote.ungradable for vote in clean["votes"]) / answers, 4),
        "adversarial_s": round(ours["seconds"], 3),
        "adversarial_bound_s": round(bound, 1),
        "adversarial_timeouts": ours["stats"].timeouts,
        "adversarial_restarts": ours["stats"].restarts,
        "adversarial_hang": ours["seconds"] > bound,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=2, help="seconds per comparison, both sides")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baseline-limit", type=float, default=150.0)
    parser.add_argument("--adversarial-share", type=float, default=0.01, help="0 skips the adversarial mix")
    args = parser.parse_args(argv)

    questions = answer_set(load_golds(args.data, args.questions), args.samples, args.seed)
    ours = run_ours(questions, args.workers, float(args.timeout))
    print(f"ours: {len(questions)} questions in {ours['seconds']:.2f}s (+{ours['start_s']:.2f}s pool start)")
    baseline = run_baseline(questions, args.timeout, args.baseline_limit)
    print(f"baseline: {len(baseline['votes'])} questions in {baseline['seconds']:.2f}s")
    report = summarize(questions, ours, baseline, args.samples)
    if args.adversarial_share > 0:
        report.update(run_adversarial(questions, args.adversarial_share, args.seed, args.workers, float(args.timeout), ours))
        print(f"adversarial mix: {report['adversarial_answers']} answers in {report['adversarial_s']}s "
              f"(bound {report['adversarial_bound_s']}s)")
    for index, vote in enumerate(ours["votes"][: len(baseline["votes"])]):
        if vote.label != baseline["votes"][index][0]:
            print(f"disagree q{index}: ours={vote.label!r} baseline={baseline['votes'][index][0]!r}")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
