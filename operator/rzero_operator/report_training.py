"""Training curves for the run report: the reward of every rollout step of both roles, with its spread.

A GRPO step learns only from reward differences within a group; a flat reward with zero spread means the
role learned nothing that step. Each training summary carries the per-step `rewards` and `reward_stds`
(grpo.training_metrics); this module reads them from the committed outputs and plots them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

ROLES = ("challenger", "solver")


def read_training_curves(storage, iterations: Iterable[int]) -> dict[str, dict[int, dict[str, list[float]]]]:
    """{role: {iteration: {"rewards": [...], "reward_stds": [...]}}} from the committed training summaries
    (`storage` rooted at the run root); roles and iterations without a committed output are left out."""
    from rzero_worker.storage import is_committed
    from rzero_worker.summary import read_summary

    curves: dict[str, dict[int, dict[str, list[float]]]] = {}
    for iteration in iterations:
        for role in ROLES:
            key = f"iter-{iteration:03d}/{role}"
            if not is_committed(storage, key):
                continue
            metrics = (read_summary(storage, key) or {}).get("metrics") or {}
            rewards = [float(r) for r in metrics.get("rewards") or [] if isinstance(r, (int, float))]
            if rewards:
                spreads = [float(s) for s in metrics.get("reward_stds") or [] if isinstance(s, (int, float))]
                curves.setdefault(role, {})[iteration] = {"rewards": rewards, "reward_stds": spreads}
    return curves


def plot_training_curves(curves: dict[str, dict[int, dict[str, list[float]]]], path: Path) -> None:
    """One panel per role: mean reward per rollout step (steps of all iterations in a row), the spread
    (mean within-group standard deviation) shaded around it; vertical lines separate iterations."""
    from .report import _pyplot

    plt = _pyplot()
    roles = [role for role in ROLES if role in curves]
    fig, axes = plt.subplots(1, len(roles), figsize=(5 * len(roles), 3.2), squeeze=False)
    for ax, role in zip(axes[0], roles):
        step = 0
        for iteration in sorted(curves[role]):
            rewards = curves[role][iteration]["rewards"]
            spreads = curves[role][iteration]["reward_stds"] or [0.0] * len(rewards)
            xs = list(range(step + 1, step + len(rewards) + 1))
            ax.plot(xs, rewards, marker="o", label=f"iteration {iteration}")
            ax.fill_between(xs, [r - s for r, s in zip(rewards, spreads)], [r + s for r, s in zip(rewards, spreads)],
                            alpha=0.2)
            step += len(rewards)
            ax.axvline(step + 0.5, color="grey", linewidth=0.5)
        ax.set_title(f"{role} reward per rollout step (± spread)")
        ax.set_xlabel("rollout step")
        ax.set_ylabel("mean reward")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
