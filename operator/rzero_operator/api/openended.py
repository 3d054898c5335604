"""The open-ended run's spec rules (spec.task kind open-ended) and its status records (spec.task kind open-ended): the judge-failure report of each iteration's
label phase and the win rate of its evaluation, summed over shards from the phase summaries
(rzero_worker/openended/failures.py and winrate.py write the counts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rzero_worker.benchmarks.scoring import wilson_interval
from rzero_worker.task import Schema


def check_open_ended(spec) -> None:
    """RZeroRunSpec's open-ended rules (ValueError("field: message"), as every spec-level validator)."""
    if not spec.task.open_ended:
        return
    if spec.labeling.verifier == "veto":
        raise ValueError("labeling.verifier: the veto checks majority-vote labels; an open-ended task has none "
                         "(its Verifier scores responses)")
    if spec.corpus is not None:
        raise ValueError("corpus: the grounded Challenger writes verifiable questions; it cannot be combined "
                         "with task.kind open-ended")
    if spec.task.held_out is not None and spec.oracle.model is None and spec.oracle.endpoint is None:
        raise ValueError("task.heldOut: the win rate is judged by the oracle; set oracle.model or oracle.endpoint")


class JudgeRecord(Schema):
    """How the frozen Verifier scored the Solver's responses in the label phase, and its known failures."""

    source: str | None = Field(default=None, max_length=64, description="model or endpoint.")
    judged: int = Field(default=0, ge=0, description="Responses put to the Verifier.")
    scored: int = Field(default=0, ge=0, description="Responses with a readable score for every criterion.")
    unparsable: int = Field(default=0, ge=0, description="Outputs it could not read (scored nothing).")
    unavailable: int = Field(default=0, ge=0, description="Responses with no output: endpoint failure or budget.")
    mean_score: float | None = Field(default=None, description="Mean normalised score (0..1) of the scored responses.")
    length_bias: float | None = Field(
        default=None, description="Pearson's r of response length (characters) with score; far from 0: the judge "
        "rewards length.",
    )
    tasks_scored: int = Field(default=0, ge=0, description="Tasks with at least two scored responses.")
    tasks_collapsed: int = Field(default=0, ge=0, description="Of those, tasks whose responses were all scored alike.")
    score_collapse: float | None = Field(default=None, description="tasksCollapsed / tasksScored.")
    requests: int | None = Field(default=None, description="Endpoint: HTTP requests made, retries included.")
    malformed: int | None = Field(default=None, description="Endpoint: replies that were not a chat completion.")
    failed: int | None = Field(default=None, description="Endpoint: responses left unscored after retries.")
    over_budget: int | None = Field(default=None, description="Endpoint: responses not sent, the budget spent.")
    error: str | None = Field(default=None, max_length=1024, description="Why the endpoint stopped early.")


class WinRateRecord(Schema):
    """The iteration's Solver against iteration 0's on the held-out tasks, judged by the oracle in both orders."""

    source: str | None = Field(default=None, max_length=64, description="The judge: model or endpoint.")
    tasks: int = Field(default=0, ge=0, description="Held-out tasks compared.")
    wins: int = Field(default=0, ge=0, description="Tasks the current Solver won (both orders' points > 0).")
    losses: int = Field(default=0, ge=0, description="Tasks iteration 0 won.")
    ties: int = Field(default=0, ge=0, description="Tasks with equal points (tie verdicts or orders disagreeing).")
    unjudged: int = Field(default=0, ge=0, description="Tasks with neither verdict readable (left out).")
    win_rate: float | None = Field(default=None, description="(wins + ties / 2) / (wins + losses + ties).")
    win_rate_ci95: list[float] | None = Field(default=None, description="95% Wilson interval of winRate.")
    unparsable: int = Field(default=0, ge=0, description="Verdicts that were unreadable or missing.")
    decided: int = Field(default=0, ge=0, description="Verdicts that chose A or B.")
    first_chosen: int = Field(default=0, ge=0, description="Of those, verdicts that chose the response shown first.")
    first_position_share: float | None = Field(
        default=None, description="firstChosen / decided: position bias (0.5 = none).")
    order_decided: int = Field(default=0, ge=0, description="Tasks whose two orders chose the same position.")
    requests: int | None = Field(default=None, description="Endpoint: HTTP requests made, retries included.")
    failed: int | None = Field(default=None, description="Endpoint: verdicts missing after retries.")
    over_budget: int | None = Field(default=None, description="Endpoint: verdicts not asked, the budget spent.")
    error: str | None = Field(default=None, max_length=1024, description="Why the endpoint stopped early.")


def _sum(entries: list[dict], keys: tuple[str, ...]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for entry in entries:
        for key in keys:
            if isinstance(entry.get(key), (int, float)) and not isinstance(entry.get(key), bool):
                total[key] = total.get(key, 0) + int(entry[key])
        for key, limit in (("source", 64), ("error", 1024)):
            if isinstance(entry.get(key), str):
                total[key] = entry[key][:limit]
    return total


_JUDGE_COUNTS = ("judged", "scored", "unparsable", "unavailable", "tasks_scored", "tasks_collapsed", "requests",
                 "malformed", "failed", "over_budget")


def judge_record(metrics: list[dict[str, Any]]) -> JudgeRecord | None:
    """The label phase's `judge` blocks summed over shards; length bias from the summed moments."""
    from rzero_worker.openended.failures import add_moments, pearson_from_moments

    entries = [m["judge"] for m in metrics if isinstance(m.get("judge"), dict)]
    if not entries:
        return None
    record = JudgeRecord(**_sum(entries, _JUDGE_COUNTS))
    score_sum = sum(float(e["score_sum"]) for e in entries if isinstance(e.get("score_sum"), (int, float)))
    record.mean_score = score_sum / record.scored if record.scored else None
    record.length_bias = pearson_from_moments(add_moments([e.get("length_moments") for e in entries]))
    record.score_collapse = record.tasks_collapsed / record.tasks_scored if record.tasks_scored else None
    return record


_WIN_COUNTS = ("tasks", "wins", "losses", "ties", "unjudged", "unparsable", "decided", "first_chosen",
               "order_decided", "requests", "failed", "over_budget")


def win_rate_record(metrics: list[dict[str, Any]]) -> WinRateRecord | None:
    """The evaluate phase's `win_rate` blocks summed over shards, with the rate and its interval."""
    entries = [m["win_rate"] for m in metrics if isinstance(m.get("win_rate"), dict)]
    if not entries:
        return None
    record = WinRateRecord(**_sum(entries, _WIN_COUNTS))
    judged = record.wins + record.losses + record.ties
    if judged:
        points = record.wins + record.ties / 2
        record.win_rate = points / judged
        record.win_rate_ci95 = list(wilson_interval(points, judged))
    record.first_position_share = record.first_chosen / record.decided if record.decided else None
    return record


def apply_open_ended(record, phase: str, metrics: list[dict[str, Any]]) -> None:
    """Set the record's judge report (label) or win rate (evaluate) where the summaries carry them."""
    if phase == "label":
        record.judge = judge_record(metrics)
    elif phase == "evaluate":
        record.win_rate = win_rate_record(metrics)


def judge_text(judge: JudgeRecord) -> str:
    """One line on the Verifier's scoring in an iteration: how much it could read, and its known failures."""
    text = (f"the Verifier scored {judge.scored} of {judge.judged} responses (unparsable {judge.unparsable}, "
            f"unavailable {judge.unavailable})")
    if judge.mean_score is not None:
        text += f", mean score {judge.mean_score:.2f}"
    if judge.length_bias is not None:
        text += f"; length bias r = {judge.length_bias:+.2f}"
    if judge.score_collapse is not None:
        text += f"; score collapse {judge.tasks_collapsed} of {judge.tasks_scored} tasks"
    return text


def win_text(win: WinRateRecord) -> str:
    """One line on the win rate against iteration 0, its interval and the judge's position bias."""
    if win.win_rate is None:
        return f"no held-out task judged ({win.unjudged} of {win.tasks} unreadable)"
    low, high = win.win_rate_ci95 or (0.0, 1.0)
    text = (f"win rate {100 * win.win_rate:.1f}% [{100 * low:.1f}, {100 * high:.1f}] against iteration 0 "
            f"({win.wins} won, {win.losses} lost, {win.ties} tied, {win.unjudged} unjudged)")
    if win.first_position_share is not None:
        text += (f"; the first response chosen in {100 * win.first_position_share:.0f}% of {win.decided} verdicts, "
                 f"{win.order_decided} tasks decided by the order")
    return text


def open_ended_lines(status: dict) -> list[str]:
    """`rzero status` lines: the judge report and the win rate of each iteration that has them."""
    lines = []
    for entry in status.get("iterationHistory") or []:
        iteration = entry.get("iteration")
        if isinstance(entry.get("judge"), dict):
            lines.append(f"judge, iteration {iteration}: {judge_text(JudgeRecord.model_validate(entry['judge']))}")
        if isinstance(entry.get("winRate"), dict):
            lines.append(f"win rate, iteration {iteration}: {win_text(WinRateRecord.model_validate(entry['winRate']))}")
    return [""] + lines if lines else []


def open_ended_events(record, phase: str) -> list[tuple[str, str, str]]:
    """Events after an open-ended label (JudgeReport; VerifierFailed when its endpoint stopped) or evaluation
    (WinRate)."""
    events = []
    if phase == "label" and record.judge is not None:
        events.append(("Normal", "JudgeReport", f"iteration {record.iteration}: {judge_text(record.judge)}"))
        if record.judge.error:
            events.append(("Warning", "VerifierFailed",
                           f"iteration {record.iteration}: the endpoint Verifier stopped: {record.judge.error}"))
    if phase == "evaluate" and record.win_rate is not None:
        events.append(("Normal", "WinRate", f"iteration {record.iteration}: {win_text(record.win_rate)}"))
    return events
