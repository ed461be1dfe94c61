"""The GPU check's chart: pairs/s per peer and request size, server rps and p99.

    python -m bench.device.chart docs/gpu-results/RESULT.json [OUT.png]

The title names the device the numbers come from (the GPU, or the CPU of a dry run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

OURS, PEER, PEER_LINE, OURS_LINE = "#1f77b4", "#aaaaaa", "#7f7f7f", "#d62728"
WORKLOADS = {"mixed100": "100 mixed-length documents", "rag25": "25 documents"}


def device_name(data: dict) -> str:
    machine = (data.get("sections", {}).get("environment") or {}).get("machine") or {}
    gpu = machine.get("gpu") or {}
    if gpu.get("name"):
        return f"{gpu['name']} ({gpu.get('memory_gib', '?')} GiB)"
    cpu = machine.get("cpu") or {}
    return f"{cpu.get('model', 'unknown CPU')}, {cpu.get('cores', '?')} cores (CPU dry run)"


def panels(data: dict) -> list[tuple[str, dict]]:
    """(title, {label: pairs/s}) for every model section and request size measured."""
    out = []
    for name, section in data.get("sections", {}).items():
        peers = section.get("peers") or {}
        for workload, words in WORKLOADS.items():
            rates = {label: row[workload]["pairs_per_s"] for label, row in peers.items()
                     if isinstance(row.get(workload), dict)}
            if rates:
                out.append((f"{name.split(':', 1)[-1]}, {words}: pairs/s", rates))
    return out


def draw(data: dict, path: Path) -> Path:
    bars = panels(data)
    server = (data.get("sections", {}).get("server") or {}).get("stacks") or {}
    has_server = any(s.get("levels") for s in server.values())
    count = max(1, len(bars) + (1 if has_server else 0))
    cols = 2 if count > 1 else 1
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.4 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (title, rates) in zip(flat, bars):
        colors = [OURS if label.startswith("ours") else PEER for label in rates]
        drawn = ax.barh(list(rates), list(rates.values()), color=colors)
        ax.bar_label(drawn, fmt="%.4g", fontsize=8, padding=2)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pairs per second (higher is better)")
        ax.margins(x=0.18)
    if has_server:
        _server(flat[len(bars)], server, data.get("sections", {}).get("server", {}))
    for ax in flat[len(bars) + (1 if has_server else 0):]:
        ax.axis("off")
    fig.suptitle(f"GPU check on {device_name(data)}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _server(ax, stacks: dict, section: dict) -> None:
    measured = {n: s["levels"] for n, s in stacks.items() if s.get("levels")}
    levels = sorted({r["concurrency"] for rows in measured.values() for r in rows})
    width = 0.8 / len(measured)
    twin = ax.twinx()
    for k, (name, rows) in enumerate(measured.items()):
        by_level = {r["concurrency"]: r for r in rows}
        xs = [i + (k - (len(measured) - 1) / 2) * width for i in range(len(levels))]
        color, line = (OURS, OURS_LINE) if name == "ours" else (PEER, PEER_LINE)
        label = "our server" if name == "ours" else name.capitalize()
        drawn = ax.bar(xs, [by_level.get(lv, {}).get("rps") or 0 for lv in levels], width,
                       color=color, label=f"{label} rps")
        ax.bar_label(drawn, fmt="%.0f", fontsize=7)
        p99 = [by_level.get(lv, {}).get("p99_ms") for lv in levels]
        twin.plot(xs, [p if p is not None else float("nan") for p in p99], "o--",
                  color=line, label=f"{label} p99")
    ax.set_xticks(range(len(levels)), [f"c={lv}" for lv in levels])
    ax.set_ylabel("requests per second")
    twin.set_ylabel("p99 latency (ms)")
    ax.set_title(f"server, {section.get('model', '')}, 10-document requests", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, fontsize=7, loc="upper left")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        print("usage: python -m bench.device.chart RESULT.json [OUT.png]", file=sys.stderr)
        return 2
    source = Path(argv[0])
    try:
        data = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        print(f"chart: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) > 1 else source.with_suffix(".png")
    print(draw(data, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
