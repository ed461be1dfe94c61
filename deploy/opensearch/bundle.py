"""Write the folder: IAM documents, one numbered folder per pattern, and the README."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.errors import UserError
from deploy.opensearch import iam, readme
from deploy.opensearch.patterns import PATTERNS
from deploy.opensearch.steps import steps
from deploy.opensearch.target import Target


def render(obj) -> str:
    """Plain JSON (no Dev Tools triple quotes): Painless travels as an escaped string."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def files(target: Target) -> dict[str, str]:
    """Relative path -> text, for every file of the folder."""
    out = {f"iam/{name}": render(doc) for name, doc in iam.documents(target).items()}
    for pattern in PATTERNS.values():
        for step in steps(pattern, target):
            out[f"{pattern.folder}/{step.file}"] = render(step.body)
    out["README.md"] = readme.text(target)
    return out


def write(target: Target, out_dir: Path) -> list[Path]:
    written = []
    try:
        for rel, text in files(target).items():
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise UserError(f"cannot write {out_dir}: {exc.strerror}") from None
    return written
