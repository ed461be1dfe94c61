"""`make device-kit`: fill build/device-kit for a GPU machine without network.

    python -m bench.device.prepare                    # Python 3.12 wheels (the GPU machine)
    python -m bench.device.prepare --current-python   # wheels for this interpreter (tests)

Downloads, with ``pip download --no-deps --only-binary=:all:``, exactly the pinned wheels
of bench/device/kit.py (our serving path; Infinity as a second set), builds the tokenizer
assets (bench/device/assets.py), checks that every carried wheel's requirements are met by
its set or the GPU machine (bench/device/closure.py) and that kit and working tree together
stay under the 64 MiB that travel with a run, and writes ``manifest.json`` with every
file's size.  Exit status 0, or 1 with one line saying what is missing or too big.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from . import assets, closure, kit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.device.prepare",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=kit.KIT, help="the folder to carry")
    p.add_argument("--sets", default="serving,infinity",
                   help="wheel sets to download (serving, infinity)")
    p.add_argument("--current-python", action="store_true",
                   help="wheels for this interpreter and platform instead of CPython 3.12")
    args = p.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(args.sets) - set(kit.wheel_sets())
    if unknown:
        p.error(f"unknown wheel sets {sorted(unknown)}; choose from {sorted(kit.wheel_sets())}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    python = "current" if args.current_python else kit.TARGET_PYTHON
    try:
        wheels = {name: download(pins, args.dest / "wheels" / name, python)
                  for name, pins in kit.wheel_sets().items() if name in args.sets}
        tokenizers = assets.build_all(args.dest / "assets")
    except DownloadError as exc:
        print(f"device-kit: {exc}", file=sys.stderr)
        return 1
    manifest = write_manifest(args.dest, python, wheels, tokenizers)
    print(report(manifest))
    target = kit.TARGET_PYTHON if python == "current" else python
    gaps = [f"wheels/{name}: {line}" for name in wheels
            for line in closure.unmet(args.dest / "wheels" / name, target)]
    if gaps:
        print(f"device-kit: {len(gaps)} unmet requirement(s): {'; '.join(gaps)}",
              file=sys.stderr)
        return 1
    if not manifest["fits"]:
        print(f"device-kit: kit and tree need {mib(manifest['carried_bytes'])} MiB, over the"
              f" {mib(kit.CARRY_LIMIT)} MiB that travel", file=sys.stderr)
        return 1
    return 0


class DownloadError(RuntimeError):
    pass


def download(pins: dict[str, str], dest: Path, python: str) -> dict[str, int]:
    """Every pinned wheel in ``dest`` (nothing else); returns bytes per wheel file."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = {n: v for n, v in pins.items() if not _find(dest, n, v, python)}
    if missing:  # one pip run for the set: one index round trip per name, not a process
        _pip_download(missing, dest, python)
    wanted = {_find(dest, n, v, python).name for n, v in pins.items()}
    for stale in dest.glob("*.whl"):  # a changed pin must not leave two versions behind
        if stale.name not in wanted:
            stale.unlink()
    return {path.name: path.stat().st_size for path in sorted(dest.glob("*.whl"))}


def _pip_download(pins: dict[str, str], dest: Path, python: str) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "-d", str(dest),
               *(f"{name}=={version}" for name, version in pins.items())]
    if python != "current":
        command += ["--python-version", python, "--implementation", "cp"]
        for platform in kit.PLATFORMS:
            command += ["--platform", platform]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PIP_NO_INPUT="1"))
    absent = [f"{n}=={v}" for n, v in pins.items() if not _find(dest, n, v, python)]
    if done.returncode != 0 or absent:
        detail = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise DownloadError(f"no wheel of {', '.join(absent) or 'the set'} for Python"
                            f" {python}: {detail}")


def _find(dest: Path, name: str, version: str, python: str) -> Path | None:
    """A wheel of name==version in dest that runs on ``python`` (pure, abi3 or its cp tag)."""
    prefix = f"{kit.normalise(name).replace('-', '_')}-{version}-"
    tag = "cp" + (f"{sys.version_info[0]}{sys.version_info[1]}" if python == "current"
                  else python.replace(".", ""))
    for path in dest.glob("*.whl"):
        if not path.name.lower().startswith(prefix.lower()):
            continue
        python_tag, abi = path.name[:-4].split("-")[-3:-1]
        if abi in ("none", "abi3") or tag in python_tag.split("."):
            return path
    return None


def tree_bytes() -> int:
    """Bytes of the files git tracks (what travels besides the carried kit)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=kit.ROOT, capture_output=True,
                               check=True, timeout=60).stdout.split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return 0
    paths = (kit.ROOT / os.fsdecode(n) for n in names if n)
    return sum(p.stat().st_size for p in paths if p.is_file())


def write_manifest(dest: Path, python: str, wheels: dict, tokenizers: dict) -> dict:
    kit_bytes = sum(p.stat().st_size for p in dest.rglob("*")
                    if p.is_file() and p.name != "manifest.json")
    tree = tree_bytes()
    manifest = {
        "python": python,
        "wheels": wheels,
        "wheel_set_bytes": {name: sum(files.values()) for name, files in wheels.items()},
        "tokenizer_bytes": tokenizers,
        "kit_bytes": kit_bytes,
        "tree_bytes": tree,
        "carried_bytes": kit_bytes + tree,
        "limit_bytes": kit.CARRY_LIMIT,
        "fits": kit_bytes + tree + kit.TREE_MARGIN <= kit.CARRY_LIMIT,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def report(manifest: dict) -> str:
    lines = [f"device kit for Python {manifest['python']}:"]
    for name, size in manifest["wheel_set_bytes"].items():
        lines.append(f"  wheels/{name}: {len(manifest['wheels'][name])} wheels, {mib(size)} MiB")
    for name, size in manifest["tokenizer_bytes"].items():
        lines.append(f"  assets/{name}: {mib(size)} MiB")
    lines.append(f"  kit {mib(manifest['kit_bytes'])} MiB + tracked tree"
                 f" {mib(manifest['tree_bytes'])} MiB = {mib(manifest['carried_bytes'])} MiB"
                 f" of {mib(manifest['limit_bytes'])} MiB"
                 f" ({'fits' if manifest['fits'] else 'TOO BIG'})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
