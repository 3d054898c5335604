"""What the phases send to the trackers (tracking.py; `log_phase_summary` and `warmup_step_logger` there):
TRL's own training logs, the warm-up's loss, and each phase's summary metrics.

- Training (Challenger, Solver): `TrackerCallback` forwards every `on_log` of the trainer, all of TRL's
  numbers as they are (reward, reward_std, kl, clip_ratio/*, entropy, completions/mean_length, grad_norm,
  learning_rate, num_tokens, step_time, ...) under `train/`, at the optimizer update (`global_step`); it
  adds the one rate TRL does not log: `perf/tokens_per_second` (num_tokens gained over the wall time between
  two logs). After a resume it first replays the restored log history, so the committed curves start at 1.
- Warm-up: `train/loss` per optimizer step (prefix_sft.train's `on_step`).
- Every phase: its summary metrics under `phase/` at step = iteration, plus for generate
  `phase/questions_per_second` and `phase/valid_share`, for label `phase/kept_share` and the agreement
  histogram `label/agreement` (the summary's score_histogram over [0, 1]).
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

from .tracking import Trackers, finite_scalars

class TrackerCallback(TrainerCallback):
    def __init__(self, trackers: Trackers):
        self.trackers = trackers
        self._last: tuple[float, float] | None = None  # (monotonic time, num_tokens) of the previous log

    def on_train_begin(self, args, state, control, **kwargs):
        for entry in state.log_history:  # restored from the checkpoint a resumed phase starts from
            values = {key: value for key, value in entry.items() if key != "step"}
            self.trackers.scalars(int(entry.get("step", 0)), finite_scalars(values, "train/"))
        tokens = [entry["num_tokens"] for entry in state.log_history if isinstance(entry.get("num_tokens"), (int, float))]
        self._last = (time.monotonic(), float(tokens[-1]) if tokens else 0.0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        values = finite_scalars(logs, "train/")
        now, tokens = time.monotonic(), logs.get("num_tokens")
        if self._last is not None and isinstance(tokens, (int, float)) and now > self._last[0]:
            values["perf/tokens_per_second"] = (tokens - self._last[1]) / (now - self._last[0])
        self._last = (now, float(tokens) if isinstance(tokens, (int, float)) else 0.0)
        self.trackers.scalars(state.global_step, values)
