"""DLC parity: the same model.tar.gz served by the official Hugging Face DLC stack
(sagemaker-huggingface-inference-toolkit 2.6.0 + multi-model-server, transformers 4.x, from
.venv-dlc) and by our server (transformers 5.x) answers every dialect the same: same
structure, order, indices and texts, scores within 1e-5, per-response ids aside.

Client errors answer alike too: the toolkit would turn every exception into HTTP 400, so
on its model server the hooks answer a request's error with its own status and body
(reranker/refusals.py).  Where the DLC still differs by design (what its model server does
before our hooks run), the test pins it down.

The DLC side runs twice: "venv" is the stack from .venv-dlc on loopback (fast, no Docker);
"container" is the DLC-equivalent image (container/dlc, `make dlc-image`) serving the
`make package` archive unpacked at /opt/ml/model, as SageMaker runs the real DLC.  The
container side is skipped, with the reason, where Docker cannot run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import httpx
import pytest

import dlcimage
import dockerutil
from bench import dlc_stack as dlcutil
from bench.local_server import start_server
from example_texts import (
    CAPITAL_DOCS,
    CAPITAL_QUERY,
    MOVIES,
    MOVIES_QUERY,
    NYC_AREAS,
    NYC_QUERY,
    PANDA_DOCS,
    PANDA_QUERY,
)

pytestmark = pytest.mark.slow

TOL = 1e-5
JSON = "application/json"
# The same engine settings on both sides; the name makes the "model" fields comparable.
ENGINE_ENV = {"RERANK_MODEL_NAME": "tiny-bert", "RERANK_MAX_DOCUMENTS": "16",
              "RERANK_THREADS": "1"}

DIALECT_CASES = {
    "cohere-movies-top_n": {"model": "rerank", "query": MOVIES_QUERY, "documents": MOVIES,
                            "top_n": 5, "return_documents": True},
    "cohere-capital-all": {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS},
    "cohere-objects-rank_fields": {"query": NYC_QUERY, "documents": NYC_AREAS,
                                   "rank_fields": ["area_name", "facts"], "top_n": 2,
                                   "return_documents": True},
    "cohere-text-objects": {"query": PANDA_QUERY, "documents": [{"text": d} for d in PANDA_DOCS],
                            "return_documents": True},
    "tei-capital": {"query": CAPITAL_QUERY, "texts": CAPITAL_DOCS},
    "tei-raw-return_text": {"query": CAPITAL_QUERY, "texts": CAPITAL_DOCS, "raw_scores": True,
                            "return_text": True},
    "topk-panda": {"query": PANDA_QUERY, "documents": PANDA_DOCS, "topk": 2},
    "pipeline-single": {"inputs": {"text": NYC_AREAS[2]["facts"], "text_pair": NYC_QUERY}},
    "pipeline-list": {"inputs": [{"text": a["facts"], "text_pair": NYC_QUERY}
                                 for a in NYC_AREAS]},
    "pipeline-function_to_apply": {"inputs": [{"text": d, "text_pair": PANDA_QUERY}
                                              for d in PANDA_DOCS],
                                   "parameters": {"function_to_apply": "none"}},
    "score-one-query": {"model": "m", "text_1": CAPITAL_QUERY, "text_2": CAPITAL_DOCS},
    "score-pairs-raw": {"queries": [PANDA_QUERY, CAPITAL_QUERY],
                        "documents": [PANDA_DOCS[0], CAPITAL_DOCS[1]], "use_activation": False},
    "elastic-top_n-text": {"query": MOVIES_QUERY, "input": MOVIES, "top_n": 3,
                           "return_documents": True},
}

# Client faults as (body, Content-Type, Accept, the status both answer).
ERROR_CASES = {
    "too-many-documents": ({"query": "q", "documents": ["d"] * 17}, JSON, JSON, 413),
    "text-plain": ("plain words", "text/plain", JSON, 415),
    "top_n-zero": ({"query": "q", "documents": ["d"], "top_n": 0}, JSON, JSON, 422),
    "accept-csv": ({"query": "q", "documents": ["d"]}, JSON, "text/csv", 406),
    "malformed-json": ('{"query": "q", "documents": [', JSON, JSON, 400),
    "instruction-on-a-cross-encoder": ({"query": "q", "documents": ["d"],
                                        "instruction": "be strict"}, JSON, JSON, 422),
}


@pytest.fixture(scope="module")
def model_dir(bert_dir, tmp_path_factory):
    """The unpacked model.tar.gz: tiny BERT files at the root, code/ beside them.

    The tiny BERT's weights (std 0.02, hidden size 32) give every pair nearly the same score
    (all within 1e-4 of 0.503), which would make a 1e-5 tolerance blind and the order a
    coin toss.  Its weight matrices are scaled x20, the size a trained network's have, so
    the tutorials' texts score from about 0.03 to 0.9, at least 3e-4 apart.
    """
    from safetensors.torch import load_file, save_file

    out = dlcutil.layout_model(bert_dir, tmp_path_factory.mktemp("dlc") / "model")
    weights = load_file(out / "model.safetensors")
    for name, tensor in weights.items():
        if tensor.ndim == 2 and "embeddings" not in name:
            weights[name] = tensor * 20
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def archive_dir(model_dir, tmp_path_factory):
    """``model_dir`` as SageMaker hands it to a container: `make package`d, then unpacked."""
    out = tmp_path_factory.mktemp("dlc-archive")
    subprocess.run([sys.executable, "-m", "deploy", "package", str(model_dir), "--no-check",
                    "-o", str(out / "model.tar.gz")], check=True, capture_output=True)
    return dockerutil.unpack_like_sagemaker(out / "model.tar.gz", out / "model")


@pytest.fixture(scope="module", params=["venv", "container"])
def servers(request, model_dir):
    """(our base URL, the DLC's base URL, the DLC side: a DlcStack or a Container)."""
    if request.param == "container":
        yield from _container_servers(request.getfixturevalue("archive_dir"))
        return
    try:
        dlcutil.check_prerequisites()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    stack = dlcutil.DlcStack(model_dir, env=ENGINE_ENV)
    try:
        with start_server(model_dir, env=ENGINE_ENV) as ours:
            stack.wait_ready(timeout=240)
            yield ours, stack.url, stack
    finally:
        stack.stop()
        stack.cleanup()


def _container_servers(archive_dir):
    reason = dlcimage.skip_reason()
    if reason:
        pytest.skip(reason)
    with start_server(archive_dir, env=ENGINE_ENV) as ours, \
            dlcimage.serve(archive_dir, env=ENGINE_ENV) as box:
        yield ours, box.url, box


def run_python(side, code: str) -> str:
    """stdout of ``python -c code`` where the DLC side serves (its venv, or its container)."""
    if isinstance(side, dlcutil.DlcStack):
        return subprocess.run([str(side.venv / "bin" / "python"), "-c", code],
                              capture_output=True, text=True, check=True).stdout
    return dlcimage.in_container(side, "python", "-c", code)


def log_text(side) -> str:
    return side.log_text() if isinstance(side, dlcutil.DlcStack) else side.logs()


def post(base_url: str, body, content_type: str = JSON, accept: str = JSON) -> httpx.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(base_url + "/invocations", content=data.encode(), timeout=60,
                      headers={"Content-Type": content_type, "Accept": accept})


def assert_same(ours, dlc, path: str = "$") -> None:
    """Equal JSON, floats within TOL, a top-level "id" (a fresh uuid per response) and
    "created" (the second it was made) aside."""
    if isinstance(ours, dict):
        assert isinstance(dlc, dict), f"{path}: {dlc!r} is not an object"
        fresh = {"id", "created"} if path == "$" else set()
        keys = set(ours) - fresh
        assert keys == set(dlc) - fresh, f"{path}: keys differ"
        for key in sorted(keys):
            assert_same(ours[key], dlc[key], f"{path}.{key}")
    elif isinstance(ours, list):
        assert isinstance(dlc, list) and len(ours) == len(dlc), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(ours, dlc)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(ours, float):
        assert isinstance(dlc, float), f"{path}: {dlc!r} is not a float"
        assert math.isclose(ours, dlc, rel_tol=0, abs_tol=TOL), f"{path}: {ours} != {dlc}"
    else:
        assert type(ours) is type(dlc) and ours == dlc, f"{path}: {ours!r} != {dlc!r}"


@pytest.mark.parametrize("body", DIALECT_CASES.values(), ids=DIALECT_CASES.keys())
def test_every_dialect_answers_the_same(servers, body):
    ours, dlc, _ = servers
    a, b = post(ours, body), post(dlc, body)
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    for answer in (a, b):
        assert answer.headers["content-type"].startswith("application/json")
    assert_same(a.json(), b.json())


@pytest.mark.parametrize("body, content_type, accept, status", ERROR_CASES.values(),
                         ids=ERROR_CASES.keys())
def test_client_errors_answer_the_same_status_and_body(servers, body, content_type, accept,
                                                      status):
    """The toolkit would answer every exception 400 in its own envelope; the hooks set the
    request's status on the model server's context and answer our error body instead."""
    ours, dlc, _ = servers
    a, b = post(ours, body, content_type, accept), post(dlc, body, content_type, accept)
    assert a.status_code == b.status_code == status, (a.text, b.text)
    assert a.json() == b.json() and "field" in a.json()["error"]


def test_a_form_body_is_refused_where_the_dlc_cannot_read_it(servers):
    """What `curl -d` sends: our server reads a form-typed JSON object as JSON; the DLC's
    model server parses it into form fields and hands the hooks no body, which is named
    (415, Content-Type) rather than called empty."""
    ours, dlc, _ = servers
    body, form = {"query": "q", "documents": ["d"]}, "application/x-www-form-urlencoded"
    assert post(ours, body, form).status_code == 200
    answer = post(dlc, body, form)
    assert answer.status_code == 415 and answer.json()["error"]["field"] == "Content-Type"


def test_dlc_ping_says_healthy_without_proving_the_model(servers):
    """The DLC's /ping is MMS's frontend only: 200 {"status": "Healthy"}, whatever the
    workers do (which is why bench/dlc_stack.py waits on a real invocation)."""
    _, dlc, _ = servers
    answer = httpx.get(dlc + "/ping", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "Healthy"}


def test_handler_runs_under_transformers_4(servers, capsys):
    """The parity above ran our code/ on the DLC venv's transformers 4.x: say which."""
    _, _, side = servers
    versions = run_python(side, "import transformers, torch; print(transformers.__version__,"
                                " torch.__version__)").split()
    assert versions[0].startswith("4."), versions
    assert versions[1].startswith("2.13.0"), versions
    assert "`model_fn` implementation found" in log_text(side)
    with capsys.disabled():
        print(f"\nDLC parity ran on transformers {versions[0]}, torch {versions[1]}")


def test_stop_leaves_no_process(servers):
    """MMS's Java frontend and Python workers outlive the toolkit; stop() ends them all."""
    _, dlc, stack = servers
    if not isinstance(stack, dlcutil.DlcStack):
        dockerutil.docker("rm", "-f", stack.id)
        assert not dockerutil.docker("ps", "-aq", "--filter", f"id={stack.id}")
        with pytest.raises(httpx.TransportError):
            httpx.get(dlc + "/ping", timeout=5)
        return
    pids = stack.pids()
    assert len(pids) >= 3  # toolkit, Java frontend, at least one worker
    assert stack.stop() == []
    listing = subprocess.run(["ps", "-eo", "pid=,stat="], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    alive = {int(line.split()[0]) for line in listing if line.strip() and "Z" not in
             line.split()[1]}
    assert not alive & set(pids)
    with pytest.raises(httpx.TransportError):
        httpx.get(dlc + "/ping", timeout=5)
