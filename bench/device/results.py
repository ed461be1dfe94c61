"""Results written as they come: every finished measurement is on disk at once.

A GPU run has a hard time limit; whatever it finished before being stopped must come
back.  :class:`Results` rewrites its JSON file (atomically) after every ``put``, and
:meth:`Results.section` runs one part of the check, recording its seconds, or why it was
skipped, or its error, so one failing part never loses the others.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path


class Skip(Exception):
    """A section (or one peer) that cannot run here, with the reason as its message."""


class Budget:
    """Seconds left of the run's limit, so late sections skip cleanly instead of dying."""

    def __init__(self, seconds: float, started: float | None = None):
        self.seconds = seconds
        self.started = time.monotonic() if started is None else started

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Results:
    def __init__(self, path: Path, data: dict, log: Callable[[str], None] = print):
        self.path = path
        self.data = data
        self.data.setdefault("sections", {})
        self.log = log
        self.write()

    def put(self, keys: tuple[str, ...], value) -> None:
        """Set ``data[k1][k2]...`` and write the file."""
        node = self.data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        self.write()

    def get(self, keys: tuple[str, ...]) -> dict:
        """``data[k1][k2]...``, or {} where nothing was put yet."""
        node = self.data
        for key in keys:
            node = node.get(key, {})
        return node

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=_plain) + "\n")
        os.replace(tmp, self.path)

    def section(self, name: str, run: Callable[[], dict], budget: Budget,
                needs_seconds: float = 0.0) -> dict:
        """Run one section into ``sections[name]``; its dict plus status and seconds."""
        if budget.left() < needs_seconds:
            reason = (f"time budget: {budget.left():.0f} s left, this part needs about"
                      f" {needs_seconds:.0f} s")
            self.put(("sections", name), {"status": "skipped", "reason": reason})
            self.log(f"{name}: skipped ({reason})")
            return self.data["sections"][name]
        self.log(f"{name}: started ({budget.left():.0f} s left)")
        started = time.monotonic()
        self.put(("sections", name), {"status": "running"})
        try:
            out = run() or {}
            out = {"status": "ok", **out}
        except Skip as exc:
            out = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:  # one broken part must not lose the rest of the run
            out = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000],
                   "traceback": traceback.format_exc()[-4000:]}
        partial = self.data["sections"].get(name, {})
        out = {**{k: v for k, v in partial.items() if k != "status"}, **out}
        out["seconds"] = round(time.monotonic() - started, 2)
        self.put(("sections", name), out)
        self.log(f"{name}: {out['status']} in {out['seconds']:.1f} s"
                 + (f" ({out.get('reason') or out.get('error')})"
                    if out["status"] != "ok" else ""))
        return out


def _plain(value):
    """numpy scalars and arrays, paths: what json cannot write by itself."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
