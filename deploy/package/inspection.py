"""``inspect``: list a model.tar.gz with sizes and sha256, and what its reranker.json says
(model, max_length, the prompt an LLM reranker is scored with, the ONNX export's check);
--check loads it with the engine."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.package import archive
from deploy.package.assemble import human_size, manifest_rows
from deploy.package.verify import verify


def run_inspect(args) -> int:
    path = Path(args.archive)
    if path.is_dir():
        raise UserError(f"{path} is a directory: inspect reads a model.tar.gz (`make package"
                        f" MODEL={path}` writes one)")
    if not path.is_file():
        raise UserError(f"{path} does not exist (run `make package MODEL=...` first)")
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{path} ({human_size(path.stat().st_size)})"))
    table.add_column("file")
    table.add_column("size", justify="right")
    try:
        for name, size in archive.list_names(path):
            table.add_row(escape(name), human_size(size))  # a name is text, not markup
    except (OSError, EOFError, archive.tarfile.TarError, archive.zlib.error) as exc:
        raise UserError(f"{path} is not a readable .tar.gz: {exc}") from None
    console = Console()
    console.print(table)
    console.print(f"sha256 {archive.sha256_file(path)}")
    for key, value in manifest_rows(_manifest(path)):
        console.print(escape(f"{key:<11} {value}"), highlight=False, soft_wrap=True)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="reranker-inspect-") as tmp:
            archive.safe_extract(path, Path(tmp))
            info = verify(Path(tmp), backend="auto")
        console.print(f"loads and scores: max_length {info['max_length']}")
    return 0


def _manifest(path: Path) -> dict:
    """The archive's reranker.json; empty for an archive `package` did not write."""
    raw = archive.read_member(path, archive.MANIFEST)
    try:
        manifest = json.loads(raw) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path}: {archive.MANIFEST} is not JSON") from None
    return manifest if isinstance(manifest, dict) else {}
