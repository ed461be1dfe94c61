"""Every family on the Hugging Face DLC: `make package`, then the DLC's transformers 4.51
(.venv-dlc) scores each model as our server's transformers 5 does.

`make deploy` sends the archive to the DLC unless an image is given, so it must carry what
transformers 4 needs from a model saved by transformers 5 (the chat template; a tokenizer
class and special-token keys it reads), and the engine must share an LLM's prefix through
transformers 4's cache layout (key/value lists, where 5 has per-layer objects).

The hooks run in each venv on the unpacked archive, as the toolkit calls them; then the
whole DLC stack (toolkit + multi-model-server) serves the Qwen3 archive against our server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

import dockerutil
import test_model_matrix as matrix
from bench import dlc_stack as dlcutil
from bench.local_server import start_server
from deploy.__main__ import main
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY

pytestmark = pytest.mark.slow

TOL = 1e-5
# Many small batches of mixed lengths: an LLM's shared prefix is expanded for each of them.
SMALL_BATCHES = {"RERANK_WARMUP": "0", "RERANK_THREADS": "1", "RERANK_BATCH_TOKENS": "64",
                 "RERANK_MAX_BATCH_ROWS": "2"}
ENCODERS = ("bert", "electra", "xlmr", "deberta", "modernbert")
LLMS = ("qwen3", "qwen3-seq-cls", "mxbai-v2", "gemma", "chat-template", "sentence-transformers")
BODIES = {
    "plain": {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS},
    "instruction": {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS[:3],
                    "instruction": "Find the sentence that names a capital city", "top_n": 2},
}
# Runs the four hooks as the toolkit does (model_dir/code on the path): JSON per model and body.
HOOKS = """
import json, sys
import inference
for model_dir in sys.argv[2:]:
    model = inference.model_fn(model_dir)
    answers = {"shared_prefix": model.describe().get("shared_prefix")}
    for name, body in json.loads(sys.argv[1]).items():
        if name == "instruction" and not (model.profile and model.profile.takes_instruction):
            continue
        data = inference.input_fn(json.dumps(body), "application/json")
        answer = json.loads(inference.output_fn(inference.predict_fn(data, model),
                                                "application/json"))
        answers[name] = answer["results"]
    print(json.dumps({model_dir: answers}))
"""


@pytest.fixture(scope="module")
def archives(model_dirs, llm_dirs, tmp_path_factory) -> dict[str, tuple]:
    """family: (model.tar.gz, the archive unpacked as SageMaker does)."""
    built = {"electra": matrix.electra, "modernbert": matrix.modernbert}
    out = {}
    for family in ENCODERS + LLMS:
        folder = tmp_path_factory.mktemp(f"dlc-{family}")
        source = (built[family](folder / "source") if family in built
                  else llm_dirs(family) if family in LLMS else model_dirs(family))
        archive = folder / "model.tar.gz"
        # --no-check: the hooks below load and score each archive on both sides.
        assert main(["package", str(source), "-o", str(archive), "--no-check"]) == 0
        out[family] = archive, dockerutil.unpack_like_sagemaker(archive, folder / "model")
    return out


def hooks_in(python: str, model_dirs: list) -> dict:
    code_dir = model_dirs[0] / "code"  # the same code/ in every archive
    done = subprocess.run([python, "-c", HOOKS, json.dumps(BODIES), *map(str, model_dirs)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(code_dir), **SMALL_BATCHES))
    assert done.returncode == 0, done.stderr[-3000:]
    answers = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            answers.update(json.loads(line))
    return answers


def same_results(ours: list, dlc: list) -> None:
    """The same documents with the same scores (tiny models score some pairs within 1e-6 of
    each other, so the order of near ties is not compared)."""
    a = {r["index"]: r["relevance_score"] for r in ours}
    b = {r["index"]: r["relevance_score"] for r in dlc}
    assert a.keys() == b.keys()
    for index, score in a.items():
        assert abs(score - b[index]) <= TOL, (index, score, b[index])


def test_the_archive_carries_what_transformers_4_loads(archives, llm_dirs, model_dirs):
    _, unpacked = archives["chat-template"]
    assert (unpacked / "chat_template.jinja").is_file()
    packaged = json.loads((unpacked / "tokenizer_config.json").read_text())
    assert packaged["tokenizer_class"] == "PreTrainedTokenizerFast"
    source = json.loads((llm_dirs("chat-template") / "tokenizer_config.json").read_text())
    assert source["tokenizer_class"] == "TokenizersBackend"  # the user's file is untouched
    # transformers 5's list of extra special tokens is transformers 4's additional ones.
    source = json.loads((model_dirs("deberta") / "tokenizer_config.json").read_text())
    packaged = json.loads((archives["deberta"][1] / "tokenizer_config.json").read_text())
    assert isinstance(source["extra_special_tokens"], list)
    assert "extra_special_tokens" not in packaged
    assert packaged["additional_special_tokens"] == source["extra_special_tokens"]
    # transformers 5 saves the rotary theta in rope_parameters only, which 4 ignores.
    source = json.loads((llm_dirs("qwen3") / "config.json").read_text())
    packaged = json.loads((archives["qwen3"][1] / "config.json").read_text())
    assert "rope_theta" not in source
    assert packaged["rope_theta"] == source["rope_parameters"]["rope_theta"]


def test_every_family_scores_the_same_on_the_dlcs_transformers(archives):
    try:
        dlcutil.check_prerequisites()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    dirs = [unpacked for _, unpacked in archives.values()]
    ours = hooks_in(sys.executable, dirs)
    dlc = hooks_in(str(dlcutil.DLC_VENV / "bin" / "python"), dirs)
    assert set(ours) == set(dlc) == {str(d) for d in dirs}
    shared = {}
    for model_dir, answers in ours.items():
        assert set(answers) == set(dlc[model_dir]), model_dir
        shared[model_dir] = answers.pop("shared_prefix")
        assert dlc[model_dir].pop("shared_prefix") == shared[model_dir], model_dir
        for name, results in answers.items():
            same_results(results, dlc[model_dir][name])
    causal = [str(archives[f][1]) for f in LLMS if f != "qwen3-seq-cls"]
    assert all(shared[d] is True for d in causal)  # on both sides: checked equal above
    assert "instruction" in ours[str(archives["qwen3"][1])]


def test_the_dlc_stack_serves_a_packaged_qwen3_reranker(archives):
    try:
        dlcutil.check_prerequisites()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    archive, unpacked = archives["qwen3"]
    stack = dlcutil.DlcStack(archive)
    try:
        with start_server(unpacked) as ours:
            stack.wait_ready(timeout=240)
            for body in BODIES.values():
                answers = [httpx.post(url + "/invocations", json=body, timeout=120)
                           for url in (ours, stack.url)]
                assert [a.status_code for a in answers] == [200, 200], answers[1].text
                same_results(answers[0].json()["results"], answers[1].json()["results"])
    finally:
        stack.stop()
        stack.cleanup()
