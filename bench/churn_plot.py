"""The churn benchmark's plot: operations per pass and ladder fidelity per policy over time, one column a regime.

Reads the document ``churn.py`` writes (its ``series``: one seed, each point the mean of a window of passes) and
draws a PNG with matplotlib (the ``bench`` extra), headless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {
    "replace_all": "tab:red",
    "all_or_nothing": "tab:orange",
    "per_order": "tab:blue",
    "rebalancer": "tab:green",
    "rebalancer_shared": "tab:olive",
}
STYLES = {"per_order": (0, (4, 2)), "rebalancer_shared": (0, (1, 2))}
"""per_order and rebalancer_shared send exactly rebalancer's operations: dashed and dotted, so the lines stay visible
one over the other."""


def plot(document: dict[str, Any], path: Path) -> None:
    """Two rows (operations per pass, log scale, a window without any shown at 0.1; mean distance from the levels
    after the pass, bps), one column a regime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = document["series"]
    window = series["window_passes"]
    regimes = list(document["results"])
    fig, axes = plt.subplots(2, len(regimes), figsize=(5 * len(regimes), 7), sharex=True, squeeze=False)
    for col, regime in enumerate(regimes):
        for policy in document["results"][regime]:
            run = series["runs"].get(f"{regime}/{policy}")
            if run is None:
                continue
            dashed = policy in STYLES
            style = {"color": COLORS.get(policy), "linestyle": STYLES.get(policy, "-"), "zorder": 3 if dashed else 2}
            for row, key in enumerate(("ops", "fid_mean")):
                points = [((i + 0.5) * window, v) for i, v in enumerate(run[key]) if v is not None]
                xs = [x for x, _ in points]
                ys = [max(v, 0.1) if row == 0 else v for _, v in points]
                axes[row][col].plot(xs, ys, label=policy, **style)
        axes[0][col].set_title(f"{regime}")
        axes[0][col].set_yscale("log")
        axes[0][col].set_ylabel(f"order operations per pass\n(mean of {window} passes, log)")
        axes[1][col].set_ylabel("mean distance from level\nafter the pass (bps)")
        axes[1][col].set_xlabel(f"pass ({document['step_seconds']} s each; seed {series['seed']})")
        for row in (0, 1):
            axes[row][col].grid(True, alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    tolerance = document["ladder"]["tolerance"]["price"]
    fig.suptitle(
        f"Churn: {document['ladder']['levels_per_side']} levels a side, price tolerance {tolerance}; "
        "rebalancer and per_order send the same minimal edit"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
