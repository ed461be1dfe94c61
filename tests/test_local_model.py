"""``make serve MODEL=x.tar.gz`` unpacks into a fresh folder and swaps it in: a repackaged
archive leaves no file of the earlier one behind."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from deploy.package import local_model


def archive(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_repackaging_leaves_no_stale_file(tmp_path):
    target = tmp_path / "serve" / "model"
    first = archive(tmp_path / "model.tar.gz", {"config.json": b"{}", "onnx/model.onnx": b"x"})
    served = local_model.unpack(first, target)
    assert (served / "onnx/model.onnx").is_file()
    second = archive(tmp_path / "model.tar.gz", {"config.json": b'{"v": 2}'})
    os.utime(second, (served.stat().st_mtime + 10,) * 2)  # newer than the first unpack
    served_again = local_model.unpack(second, target)
    assert (target / "config.json").read_bytes() == b'{"v": 2}'
    assert not (target / "onnx").exists()
    assert served_again.resolve() == target.resolve()
    assert not served.exists()  # the earlier folder is gone
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".")) == [
        "model"]


def test_an_unchanged_archive_is_not_unpacked_again(tmp_path):
    target = tmp_path / "serve" / "model"
    packed = archive(tmp_path / "model.tar.gz", {"config.json": b"{}"})
    served = local_model.unpack(packed, target)
    (served / "marker").write_text("kept")
    assert local_model.unpack(packed, target) == served
    assert (target / "marker").is_file()


def test_a_folder_unpacked_in_place_earlier_is_replaced(tmp_path):
    target = tmp_path / "serve" / "model"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "stale.bin").write_text("old")
    packed = archive(tmp_path / "model.tar.gz", {"config.json": b'{"v": 2}'})
    os.utime(packed, ((target.stat().st_mtime + 10),) * 2)
    local_model.unpack(packed, target)
    assert not (target / "stale.bin").exists() and target.is_symlink()


def test_a_failed_unpack_keeps_the_served_folder(tmp_path):
    target = tmp_path / "serve" / "model"
    good = archive(tmp_path / "good.tar.gz", {"config.json": b"{}"})
    local_model.unpack(good, target)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar file")
    os.utime(broken, ((target.stat().st_mtime + 10),) * 2)
    with pytest.raises(Exception):  # noqa: B017 (whatever the archive reader raises)
        local_model.unpack(broken, target)
    assert (target / "config.json").read_bytes() == b"{}"
    assert [p for p in target.parent.iterdir() if ".model-" in p.name and p.is_dir()] == [
        target.resolve()]


def test_another_archive_of_the_same_name_is_unpacked_even_if_older(tmp_path):
    """Serving a/model.tar.gz, then an older b/model.tar.gz: b's files are served, not a's
    (an mtime check alone took b for what was already there)."""
    target = tmp_path / "serve" / "model"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    older = archive(tmp_path / "b" / "model.tar.gz", {"config.json": b'{"from": "b"}'})
    newer = archive(tmp_path / "a" / "model.tar.gz", {"config.json": b'{"from": "a"}'})
    os.utime(older, (1_000_000_000,) * 2)
    local_model.unpack(newer, target)
    local_model.unpack(older, target)
    assert (target / "config.json").read_bytes() == b'{"from": "b"}'
