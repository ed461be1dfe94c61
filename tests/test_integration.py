"""deploy/integrations/common.py: the folder every search-engine integration writes,
swapped in whole."""

from __future__ import annotations

import re

import pytest

from deploy.errors import UserError
from deploy.integrations import common as integration


def write(out, files, kind="test"):
    with integration.folder(out, kind) as stage:
        integration.write_files(stage, files)


def test_a_new_folder_is_written_with_the_marker(tmp_path):
    out = tmp_path / "a" / "out"
    write(out, {"x.json": "{}", "sub/y.txt": "ü"})
    assert (out / "sub" / "y.txt").read_text(encoding="utf-8") == "ü"
    assert (out / integration.MARKER).read_text() == "test\n"
    assert sorted(p.name for p in tmp_path.joinpath("a").iterdir()) == ["out"]  # no staging left


def test_a_second_run_replaces_the_whole_folder(tmp_path):
    write(tmp_path / "out", {"old.json": "{}", "keep.json": "1"})
    write(tmp_path / "out", {"keep.json": "2"})
    assert not (tmp_path / "out" / "old.json").exists()
    assert (tmp_path / "out" / "keep.json").read_text() == "2"


def test_a_failed_run_leaves_the_previous_folder(tmp_path):
    write(tmp_path / "out", {"a.json": "1"})
    with pytest.raises(RuntimeError):
        with integration.folder(tmp_path / "out", "test") as stage:
            (stage / "a.json").write_text("2")
            raise RuntimeError("the export failed")
    assert (tmp_path / "out" / "a.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_foreign_folder_is_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(UserError, match="not written by this tool"):
        write(tmp_path / "mine", {"a": "b"})
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        write(tmp_path / "file", {"a": "b"})


def test_a_users_own_vespa_app_is_never_replaced(tmp_path):
    """A folder with a services.xml of its own is the user's app, not one this tool wrote."""
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "services.xml").write_text("<services/>")
    (app / "src" / "Main.java").write_text("class Main {}")
    with pytest.raises(UserError, match="not written by this tool"):
        write(app, {"services.xml": "<new/>"})
    assert (app / "src" / "Main.java").read_text() == "class Main {}"


def test_the_current_folder_is_refused_in_one_line(tmp_path, monkeypatch):
    """It would be swapped out from under the shell; "." once crashed with a traceback."""
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    for out in (".", ".."):
        with pytest.raises(UserError, match="holds the current folder"):
            write(out, {"a.json": "{}"})
    write("sub", {"a.json": "{}"})
    assert (tmp_path / "out" / "sub" / "a.json").read_text() == "{}"


def test_checks_name_the_flag():
    with pytest.raises(UserError, match=r"^--x 'A' is not lowercase$"):
        integration.check_match("--x", "A", re.compile("[a-z]+"), "lowercase")
    with pytest.raises(UserError, match="--n must be at least 4, not 3"):
        integration.check_at_least("--n", 3, 4)
    integration.check_at_least("--n", None, 4)
