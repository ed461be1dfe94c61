"""Write the folder: IAM documents, one numbered folder per pattern, and the README."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.integrations import common as integration
from deploy.integrations.opensearch import iam, readme
from deploy.integrations.opensearch.patterns import PATTERNS
from deploy.integrations.opensearch.steps import steps
from deploy.integrations.opensearch.target import Target


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
    contents = files(target)
    with integration.folder(out_dir, "opensearch") as stage:
        integration.write_files(stage, contents)
    return [out_dir / rel for rel in contents]
