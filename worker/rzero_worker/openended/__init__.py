"""Open-ended tasks (spec.task kind open-ended): a judge instead of a vote (docs/open-ended.md).

- judge.py: the frozen Verifier (model or endpoint) as a scorer of (task, response) pairs, and the oracle as a
  pairwise judge; every output it cannot read is counted, never a crash, never a high score;
- failures.py: the judge-failure reports (length bias, score collapse, position bias);
- phases.py: the open-ended challenger, generate, label and solver phases; winrate.py: the evaluation's win rate.

`rzero_worker.phases.phase_for(task)` sends a task with `open_ended` (or an evaluate task with `win_rate`) here.
"""
