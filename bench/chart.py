"""The PNG chart: pairs/s per peer and mode (engine level) with each precision's GEMM
ceiling marked, rps and p99 per concurrency (server level)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from .report import cores_text  # noqa: E402

OURS, PEER = "#1f77b4", "#aaaaaa"
COLORS = {"engine": OURS, "peer": PEER}


CEILING_STYLES = {"float32": ("#2ca02c", "--"), "bfloat16": ("#ff7f0e", ":"),
                  "float16": ("#9467bd", "-.")}


def _engine_panels(results: dict) -> list[tuple[str, dict, dict]]:
    panels = []
    for section in ("models", "gpu"):
        device = "cuda" if section == "gpu" else "cpu"
        for name, model in (results.get(section) or {}).items():
            suffix = " (GPU)" if section == "gpu" else ""
            for wname, w in model.get("workloads", {}).items():
                panels.append((f"{name}{suffix} {wname}: pairs/s", w["results"],
                               ceilings(results, w, device)))
    return panels


def ceilings(results: dict, workload: dict, device: str = "cpu") -> dict[str, float]:
    """dtype -> the pairs/s that the machine's GEMM rate in that dtype would give if every
    useful FLOP of the workload ran at it: the roof no runtime can pass."""
    per_pair = (workload.get("useful_flops_per_request") or 0) / (
        workload.get("pairs_per_request") or 1)
    if per_pair <= 0:
        return {}
    prefix = f"{device}_"
    return {k[len(prefix):]: v / per_pair
            for k, v in results["machine"].get("gemm_flops", {}).items()
            if k.startswith(prefix) and v}


def draw(results: dict, path: Path) -> Path:
    fig = figure(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure(results: dict):
    """The chart as a matplotlib figure (``draw`` saves it)."""
    panels = _engine_panels(results)
    server = results.get("server") or {}
    has_server = bool(server.get("stacks"))
    count = len(panels) + (1 if has_server else 0) or 1
    cols = 2 if count > 1 else 1
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.6 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (title, rows_, roofs) in zip(flat, panels):
        labels = [r["label"] for r in rows_.values()]
        values = [r["pairs_per_s"] for r in rows_.values()]
        colors = [COLORS.get(r["kind"], PEER) for r in rows_.values()]
        bars = ax.barh(labels, values, color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
        for dtype, roof in roofs.items():
            color, style = CEILING_STYLES.get(dtype, ("#7f7f7f", "--"))
            ax.axvline(roof, color=color, linestyle=style, linewidth=1.2,
                       label=f"{dtype} GEMM ceiling {roof:.3g}")
        if roofs:
            _legend_below(ax, *ax.get_legend_handles_labels())
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pairs per second (higher is better)")
        ax.margins(x=0.15)
    if has_server:
        _server_panel(flat[len(panels)], server)
    for ax in flat[len(panels) + (1 if has_server else 0):]:
        ax.axis("off")
    cpu = results["machine"]["cpu"]
    fig.suptitle(f"{cpu['model']}, {cores_text(cpu)} - {results['machine']['date']}",
                 fontsize=11)
    fig.tight_layout()  # makes room for the legends below the panels
    return fig


def _legend_below(ax, handles, labels) -> None:
    """The legend under the panel's x label, outside the plot: inside it, it covered the
    labels at the ends of the bars whatever corner it took."""
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22),
              ncol=min(3, len(labels)), frameon=False)


def _server_panel(ax, server: dict) -> None:
    levels = server["levels"]
    stacks = server["stacks"]
    width = 0.8 / max(1, len(stacks))
    twin = ax.twinx()
    for k, (name, rows) in enumerate(stacks.items()):
        by_level = {r["concurrency"]: r for r in rows}
        xs = [i + (k - (len(stacks) - 1) / 2) * width for i in range(len(levels))]
        rps = [by_level.get(lv, {}).get("rps") or 0 for lv in levels]
        color = {"ours": OURS, "ours-fast": "#17becf", "infinity": "#8c564b",
                 "infinity-bf16": "#e377c2"}.get(name, PEER)
        label = {"ours": "ours exact", "ours-fast": "ours fast", "infinity": "Infinity fp32",
                 "infinity-bf16": "Infinity bf16"}.get(name, "toolkit + MMS")
        bars = ax.bar(xs, rps, width, color=color, label=f"{label} rps")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        p99 = [by_level.get(lv, {}).get("p99_ms") for lv in levels]
        marker = {"ours": "#d62728", "ours-fast": "#17becf", "infinity": "#8c564b",
                  "infinity-bf16": "#e377c2"}.get(name, "#7f7f7f")
        twin.plot(xs, [p if p is not None else float("nan") for p in p99], "o--",
                  color=marker, label=f"{label} p99")
    ax.set_xticks(range(len(levels)), [f"c={lv}" for lv in levels])
    ax.set_ylabel("requests per second")
    twin.set_ylabel("p99 latency (ms)")
    ax.set_title("server level, 10-document requests", fontsize=10)
    ax.margins(y=0.12)  # room for the tallest bar's label inside the frame
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    _legend_below(ax, handles[0] + twin_handles[0], handles[1] + twin_handles[1])
