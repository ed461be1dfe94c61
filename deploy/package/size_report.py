"""What went into model.tar.gz and how long it took: sizes per file, total, archive, time.

An 8-16 GB LLM reranker takes minutes to hash and compress; the report says where the
bytes are (each weight shard), what the archive came to and how fast it went, so a slow
or surprising package is explained rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

from deploy.package.assemble import human_size

CODE_PREFIX = "code/"


def lines(files: dict[str, Path], archive: Path, seconds: float, archive_seconds: float,
          parameters: int | None = None) -> list[str]:
    """One line per model file (largest first), one for code/, then the totals; ``seconds``
    the whole packaging (loading and scoring included), ``archive_seconds`` the writing."""
    sizes = {name: path.stat().st_size for name, path in files.items()}
    model = sorted(((n, s) for n, s in sizes.items() if not n.startswith(CODE_PREFIX)),
                   key=lambda item: (-item[1], item[0]))
    code = [s for n, s in sizes.items() if n.startswith(CODE_PREFIX)]
    width = max((len(n) for n, _ in model), default=10)
    out = [f"  {name:<{width}} {human_size(size):>10}" for name, size in model]
    out.append(f"  {'code/ (' + str(len(code)) + ' files)':<{width}} {human_size(sum(code)):>10}")
    total = sum(sizes.values())
    packed = archive.stat().st_size
    rate = total / archive_seconds / 1024 ** 2 if archive_seconds > 0 else 0.0
    if parameters:
        out.append(f"parameters {parameters / 1e9:.2f} B" if parameters >= 1e8
                   else f"parameters {parameters / 1e6:.1f} M")
    out.append(f"total      {human_size(total)} in {len(sizes)} files")
    out.append(f"archive    {human_size(packed)} ({packed / total:.0%} of the input)"
               if total else f"archive    {human_size(packed)}")
    out.append(f"time       {seconds:.1f} s in all; archive and sha256 {archive_seconds:.1f} s"
               f" ({rate:.0f} MB/s of input)")
    return out
