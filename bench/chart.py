"""The PNG chart: pairs/s per peer and mode (engine level), rps and p99 per concurrency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

OURS, PEER = "#1f77b4", "#aaaaaa"
COLORS = {"engine": OURS, "peer": PEER}


def _engine_panels(results: dict) -> list[tuple[str, dict]]:
    panels = []
    for section in ("models", "gpu"):
        for name, model in (results.get(section) or {}).items():
            suffix = " (GPU)" if section == "gpu" else ""
            for wname, w in model.get("workloads", {}).items():
                panels.append((f"{name}{suffix} {wname}: pairs/s", w["results"]))
    return panels


def draw(results: dict, path: Path) -> Path:
    panels = _engine_panels(results)
    server = results.get("server") or {}
    has_server = bool(server.get("stacks"))
    count = len(panels) + (1 if has_server else 0) or 1
    cols = 2 if count > 1 else 1
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.6 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (title, rows_) in zip(flat, panels):
        labels = [r["label"] for r in rows_.values()]
        values = [r["pairs_per_s"] for r in rows_.values()]
        colors = [COLORS.get(r["kind"], PEER) for r in rows_.values()]
        bars = ax.barh(labels, values, color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pairs per second (higher is better)")
        ax.margins(x=0.15)
    if has_server:
        _server_panel(flat[len(panels)], server)
    for ax in flat[len(panels) + (1 if has_server else 0):]:
        ax.axis("off")
    cpu = results["machine"]["cpu"]
    fig.suptitle(f"{cpu['model']}, {cpu['cores']} cores - {results['machine']['date']}",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _server_panel(ax, server: dict) -> None:
    levels = server["levels"]
    stacks = server["stacks"]
    width = 0.8 / max(1, len(stacks))
    twin = ax.twinx()
    for k, (name, rows) in enumerate(stacks.items()):
        by_level = {r["concurrency"]: r for r in rows}
        xs = [i + (k - (len(stacks) - 1) / 2) * width for i in range(len(levels))]
        rps = [by_level.get(lv, {}).get("rps") or 0 for lv in levels]
        color = {"ours": OURS}.get(name, PEER)
        label = {"ours": "our server"}.get(
            name, "toolkit + MMS")
        bars = ax.bar(xs, rps, width, color=color, label=f"{label} rps")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        p99 = [by_level.get(lv, {}).get("p99_ms") for lv in levels]
        marker = {"ours": "#d62728"}.get(name, "#7f7f7f")
        twin.plot(xs, [p if p is not None else float("nan") for p in p99], "o--",
                  color=marker, label=f"{label} p99")
    ax.set_xticks(range(len(levels)), [f"c={lv}" for lv in levels])
    ax.set_ylabel("requests per second")
    twin.set_ylabel("p99 latency (ms)")
    ax.set_title("server level, 10-document requests", fontsize=10)
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize=7,
              loc="upper left")
