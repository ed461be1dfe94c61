"""``inspect``: list a model.tar.gz with sizes and sha256; --check loads it with the engine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.package import archive
from deploy.package.assemble import human_size
from deploy.package.verify import verify


def run_inspect(args) -> int:
    path = Path(args.archive)
    if not path.is_file():
        raise UserError(f"{path} does not exist (run `make package MODEL=...` first)")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{path} ({human_size(path.stat().st_size)})")
    table.add_column("file")
    table.add_column("size", justify="right")
    try:
        for name, size in archive.list_names(path):
            table.add_row(name, human_size(size))
    except (OSError, EOFError, archive.tarfile.TarError) as exc:
        raise UserError(f"{path} is not a readable .tar.gz: {exc}") from None
    console = Console()
    console.print(table)
    console.print(f"sha256 {archive.sha256_file(path)}")
    if args.check:
        with tempfile.TemporaryDirectory(prefix="reranker-inspect-") as tmp:
            archive.safe_extract(path, Path(tmp))
            info = verify(Path(tmp), backend="auto")
        console.print(f"loads and scores: max_length {info['max_length']}")
    return 0
