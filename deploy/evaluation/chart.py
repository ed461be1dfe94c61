"""``evaluate --chart``: the measures of every ranking side by side, one bar group each."""

from __future__ import annotations

from pathlib import Path

MEASURES = ("nDCG@10", "MRR@10", "Recall@10")


def draw(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    labels = list(report["results"])
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(MEASURES) + len(labels)), 3.8))
    for i, label in enumerate(labels):
        row = report["results"][label]
        spots = [m + (i - (len(labels) - 1) / 2) * width for m in range(len(MEASURES))]
        bars = ax.bar(spots, [row[m] for m in MEASURES], width, label=label,
                      color="#aaaaaa" if i == 0 else None)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks(range(len(MEASURES)), MEASURES)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("higher is better")
    ax.set_title(f"{report['dataset']}: {report['queries']} judged queries, top"
                 f" {report['depth']} reranked", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
