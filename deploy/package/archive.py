"""model.tar.gz in and out: a byte-reproducible writer and an extractor that refuses escapes.

Reproducible means the same files give the same sha256: entries in a fixed order, fixed
mtime/uid/gid/owner names/modes, and a gzip header without a name or a timestamp.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from deploy.errors import UserError, first_line

# 1980-01-01, the oldest time zip and most tools accept; SOURCE_DATE_EPOCH overrides it.
DEFAULT_MTIME = 315532800
# The first entry, so `upload` reads the model's identity without decompressing the rest.
MANIFEST = "reranker.json"
# Above this many input bytes (LLM rerankers: 8-16 GB of weights that barely compress) the
# archive is written at gzip level 1: several times faster than level 6 for a few percent.
LARGE_INPUT = 2 * 1024 ** 3


def level_for(total_bytes: int) -> int:
    """The gzip level for an archive of this much input (fixed by size: reproducible)."""
    return 1 if total_bytes > LARGE_INPUT else 6


def _mtime() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_MTIME))


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = _mtime()
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def entry_order(names: list[str]) -> list[str]:
    """Manifest first, then everything sorted; parent directories precede their files."""
    return sorted(names, key=lambda n: (n != MANIFEST, n))


def collect(root: Path, prefix: str = "") -> dict[str, Path]:
    """Every regular file under ``root`` as {archive name: path}, without caches."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        files[str(PurePosixPath(prefix) / rel.as_posix()) if prefix else rel.as_posix()] = path
    return files


def write(out: Path, files: dict[str, Path], progress: Callable[[int], None] | None = None,
          level: int = 6) -> str:
    """Write ``files`` ({name: path}) to ``out`` atomically; returns the archive's sha256.

    The archive is written to a temporary file beside ``out`` and renamed at the end, so a
    failure or an interrupt never leaves a half-written model.tar.gz behind.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=level) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for name in entry_order(_with_dirs(files)):
                        path = files.get(name)
                        if path is None:
                            tar.addfile(_info(name, directory=True))
                            continue
                        size = path.stat().st_size
                        with open(path, "rb") as fh:
                            tar.addfile(_info(name, size), _Counting(fh, progress))
            raw.flush()
            os.fsync(raw.fileno())
        _readable_as_umask_allows(tmp)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha256_file(out)


def _with_dirs(files: dict[str, Path]) -> list[str]:
    names = set(files)
    for name in files:
        parent = PurePosixPath(name).parent
        while str(parent) != ".":
            names.add(str(parent))
            parent = parent.parent
    return list(names)


class _Counting(io.RawIOBase):
    """A read-only file that reports how many bytes went through (for the progress bar)."""

    def __init__(self, fh, progress):
        self._fh, self._progress = fh, progress

    def read(self, size=-1):
        data = self._fh.read(size)
        if self._progress and data:
            self._progress(len(data))
        return data


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


class _Hashing(io.RawIOBase):
    """A read-only file that feeds every byte read into ``digest`` (and the progress)."""

    def __init__(self, fh, digest, progress):
        self._fh, self._digest, self._progress = fh, digest, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._fh.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
            if self._progress:
                self._progress(count)
        return count


def read_whole(path: Path, progress: Callable[[int], None] | None = None
               ) -> tuple[str, dict[str, int]]:
    """(sha256, {name: size} of its files) of a .tar.gz read once to its end: gzip's CRC and
    length and every tar header are checked, so a truncated or corrupt archive is refused
    (UserError) before anything is uploaded from it."""
    digest = hashlib.sha256()
    files: dict[str, int] = {}
    try:
        with open(path, "rb") as raw:
            hashing = io.BufferedReader(_Hashing(raw, digest, progress), 1 << 20)
            with gzip.GzipFile(fileobj=hashing, mode="rb") as gz:
                with tarfile.open(fileobj=gz, mode="r|") as tar:
                    for member in tar:
                        if member.isfile():
                            files[member.name.lstrip("./")] = member.size
                while gz.read(1 << 20):  # past the tar's end: the gzip trailer's checks
                    pass
            while hashing.read(1 << 20):
                pass
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise UserError(f"{path} is not a complete, readable .tar.gz ({first_line(exc)}):"
                        " build it again with `make package`") from None
    return digest.hexdigest(), files


def read_member(archive: Path, name: str) -> bytes | None:
    """One small file from the archive (the manifest is first, so this is cheap)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name.lstrip("./") == name and member.isfile():
                    return tar.extractfile(member).read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise UserError(f"{archive} is not a readable .tar.gz: {exc}") from None
    return None


def first_file_of(head: bytes, name: str) -> bytes | None:
    """``name``'s content when it is the first file of a .tar.gz that starts with ``head``
    (the archive's first bytes, e.g. a ranged read from S3), else None.  ``package`` writes
    the manifest first, so its first 64 KB hold it."""
    try:
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            member = tar.next()
            if member is None or member.name.lstrip("./") != name or not member.isfile():
                return None
            content = tar.extractfile(member).read()
    except (zlib.error, tarfile.TarError, EOFError, OSError):
        return None
    return content if len(content) == member.size else None


def check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse any entry that would land outside ``dest`` or is not a plain file or folder."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UserError(f"archive entry {name!r} has an absolute path; refusing to extract")
    if ".." in parts or ".." in name.replace("\\", "/").split("/"):
        raise UserError(f"archive entry {name!r} climbs out with '..'; refusing to extract")
    if member.issym() or member.islnk():
        target = member.linkname
        base = (dest / name).parent if member.issym() else dest
        resolved = os.path.realpath(os.path.join(base, target))
        if target.startswith("/") or not _inside(resolved, dest):
            raise UserError(f"archive entry {name!r} links to {target!r} outside the archive;"
                            " refusing to extract")
    elif not (member.isfile() or member.isdir()):
        raise UserError(f"archive entry {name!r} is a device or fifo; refusing to extract")


def _inside(path: str, root: Path) -> bool:
    root_real = os.path.realpath(root)
    return path == root_real or path.startswith(root_real + os.sep)


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract after checking every entry: nothing is written if any entry is refused.  A
    damaged archive is found only once it has been read to its end, after extracting: the
    caller's folder then holds part of it (callers extract into a folder of their own)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(member, dest)
            # The stdlib's "data" filter is a second guard with the same intent.
            tar.extractall(dest, members=members, filter="data")
            check_end(tar)
    except tarfile.ReadError:
        raise UserError(f"cannot extract {archive}: not a readable tar archive (plain, gzip,"
                        " bzip2 or xz), or a truncated one") from None
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise UserError(f"cannot extract {archive}: {first_line(exc)}") from None
    return [m.name for m in members]


def list_names(archive: Path) -> Iterator[tuple[str, int]]:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, member.size
        check_end(tar)


def check_end(tar: tarfile.TarFile) -> None:
    """What follows the last member tarfile read: only the zero blocks that end a tar (a
    damaged header reads to tarfile as the archive's end), to the end of the compressed
    stream, whose own checks (gzip's CRC and length) run there.  tarfile stops at the tar's
    end and never reads them, so a corrupt archive would otherwise extract as a good one."""
    stream = tar.fileobj
    stream.seek(tar.offset)
    while chunk := stream.read(1 << 20):
        if chunk.count(0) != len(chunk):
            raise DamagedArchive("a damaged entry header: the archive's entries go on after"
                                 " it")


class DamagedArchive(tarfile.TarError):
    """Not a ReadError (whose message says "not a tar archive"): this one names the damage."""


def _readable_as_umask_allows(path: str) -> None:
    """mkstemp makes the file 0600; the archive gets the mode any new file would (0644
    under the usual umask), so another account on the host (a container's user, a CI
    uploader) can read it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
