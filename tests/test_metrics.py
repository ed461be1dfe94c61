"""GET /metrics: the Prometheus endpoint SageMaker scrapes.

In-process (no model loaded): the setting that turns it off or moves it, one registry per
app, labels that stay bounded, the state gauges (token rate, GPU memory through an
injected reader) and the docs listing every metric.  Over HTTP, on a model whose forward
pass waits on a gate file: requests in every format and an error move the counters and
histograms by the right amounts; while the engine is busy /metrics still answers, a
request over the limit is shed (503) and a client that leaves is counted as cancelled.
"""

from __future__ import annotations

import json
import re
import socket
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bench.local_server import Server
from gated_model import post_in_thread, wait_file
from serving import config as server_config
from serving import routes
from serving.app import build_app
from serving.metrics import Metrics, WindowRate, cuda_memory

ROOT = Path(__file__).resolve().parent.parent
QUERY = "what is the capital city of america"
DOCS = ["washington dc is the capital of the united states",
        "the giant panda is a bear species endemic to china"]


def parse(text: str) -> dict[tuple, float]:
    """Samples by (sample name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def local_app(tmp_path, **settings) -> TestClient:
    """The app without its lifespan: the model never loads, /ping stays 503."""
    config = server_config.load(None, {"SM_MODEL_DIR": str(tmp_path), **settings})
    return TestClient(build_app(config))


# --- in process ------------------------------------------------------------------------


def test_metrics_are_on_by_default_and_answer_before_the_model_loads(tmp_path):
    client = local_app(tmp_path)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    assert value(samples, "reranker_model_ready") == 0.0
    assert value(samples, "reranker_requests_in_flight") == 0.0
    assert "reranker_model_load_seconds" not in families(response.text)
    # No *_created series: they would double what CloudWatch stores for nothing.
    assert "_created" not in response.text


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(tmp_path):
    response = local_app(tmp_path).get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_serve_metrics_0_removes_the_route_and_the_middleware(tmp_path):
    client = local_app(tmp_path, SERVE_METRICS="0")
    assert client.get("/metrics").status_code == 404
    assert client.app.app.state.metrics is None  # RequestLog -> the Starlette app itself


def test_serve_metrics_path_moves_it(tmp_path):
    client = local_app(tmp_path, SERVE_METRICS_PATH="/server/metrics")
    assert client.get("/server/metrics").status_code == 200
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("path", ["metrics", "/a/../b", "/ping", "/invocations",
                                  "/endpoints/x/invocations", "/with space", "/" + "m" * 256])
def test_a_metrics_path_sagemaker_would_refuse_or_that_shadows_a_route_stops_start_up(path):
    with pytest.raises(server_config.ConfigError, match="SERVE_METRICS_PATH"):
        server_config.load(None, {"SERVE_METRICS_PATH": path})


def test_the_reserved_paths_are_the_routes_the_server_serves():
    served = {route.path for route in routes.ROUTES}
    assert served - set(server_config.SERVING_PATHS) == {"/endpoints/{name}/invocations"}


def test_each_app_has_its_own_registry(tmp_path):
    first, second = local_app(tmp_path), local_app(tmp_path)
    assert first.post("/invocations", json={"query": "q"}).status_code == 503
    one, two = parse(first.get("/metrics").text), parse(second.get("/metrics").text)
    shed = dict(route="/invocations", reason="model_loading")
    assert value(one, "reranker_requests_shed_total", **shed) == 1.0
    assert value(two, "reranker_requests_shed_total", **shed) == 0.0


def test_labels_stay_bounded_whatever_the_client_sends(tmp_path):
    client = local_app(tmp_path)
    for i in range(5):
        assert client.get(f"/no/such/path/{i}").status_code == 404
    assert client.get("/invocations").status_code == 405
    assert client.post("/endpoints/any-name/invocations", json={}).status_code == 424
    assert client.get("/ping").status_code == 503
    assert client.post("/ping").status_code == 405  # a GET route: no scoring request
    samples = parse(client.get("/metrics").text)
    assert value(samples, "reranker_requests_total", route="/ping", dialect="none",
                 status="405") == 1.0
    assert value(samples, "reranker_requests_in_flight") == 0.0
    assert value(samples, "reranker_requests_total", route="other", dialect="none",
                 status="404") == 5.0
    assert value(samples, "reranker_requests_total", route="/invocations", dialect="none",
                 status="405") == 1.0
    assert value(samples, "reranker_requests_total", route="/endpoints/{name}/invocations",
                 dialect="unknown", status="424") == 1.0
    # /ping's 503 while loading is no shed request.
    assert not [k for k in samples if k[0] == "reranker_requests_shed_total"
                and ("route", "/ping") in k[1]]
    routes_seen = {dict(k[1])["route"] for k in samples if k[0] == "reranker_requests_total"}
    assert routes_seen <= {r.path for r in routes.ROUTES} | {"other", "/metrics"}


def test_tokens_per_second_covers_the_last_minute():
    now = [1000.0]
    rate = WindowRate(60, lambda: now[0])
    rate.add(600)
    now[0] += 30
    rate.add(1200)
    assert rate.per_second() == pytest.approx(1800 / 60)
    now[0] += 31  # the first second has left the window
    assert rate.per_second() == pytest.approx(1200 / 60)
    now[0] += 120
    assert rate.per_second() == 0.0


class FakeCuda:
    def __init__(self):
        self.asked = []

    def current_device(self):
        return 1

    def memory_allocated(self, index):
        self.asked.append(index)
        return 3 * 2**20

    def max_memory_allocated(self, index):
        return 5 * 2**20


class FakeTorch:
    def __init__(self):
        self.cuda = FakeCuda()


class Device:
    def __init__(self, index):
        self.index = index


class Model:
    def __init__(self, device_type, index=None):
        self.backend = type("B", (), {"device_type": device_type, "device": Device(index)})()


def test_gpu_memory_is_read_only_on_cuda_and_per_device():
    torch = FakeTorch()
    assert cuda_memory(Model("cpu"), torch) == []
    assert cuda_memory(object(), torch) == []  # a custom model_fn's object
    assert cuda_memory(Model("cuda", 0), torch) == [("cuda:0", 3 * 2**20, 5 * 2**20)]
    assert cuda_memory(Model("cuda"), torch) == [("cuda:1", 3 * 2**20, 5 * 2**20)]
    assert torch.cuda.asked == [0, 1]
    # One engine per GPU (reranker.replicas): every GPU is reported.
    replicas = type("R", (), {"backends": [Model("cuda", 0).backend, Model("cuda", 2).backend]})
    assert [d for d, _, _ in cuda_memory(replicas(), torch)] == ["cuda:0", "cuda:2"]


class Loader:
    ready = True
    load_seconds = 2.5
    model = None

    def describe(self):
        return {"model": "m", "device": "cuda:0", "dtype": "bfloat16",
                "engine": {"backend": "torch"}}


def rendered(metrics: Metrics) -> str:
    return metrics.render(None)[0].decode()


def test_state_gauges_after_load_with_gpu_memory_on_cuda():
    metrics = Metrics(gpu_memory=lambda model: [("cuda:0", 100, 200)])
    metrics.attach(Loader())
    samples = parse(rendered(metrics))
    assert value(samples, "reranker_model_ready") == 1.0
    assert value(samples, "reranker_model_load_seconds") == 2.5
    assert value(samples, "reranker_model_info", model="m", backend="torch", device="cuda:0",
                 dtype="bfloat16") == 1.0
    assert value(samples, "reranker_gpu_memory_allocated_bytes", device="cuda:0") == 100
    assert value(samples, "reranker_gpu_memory_max_allocated_bytes", device="cuda:0") == 200
    cpu = Metrics()
    cpu.attach(Loader())
    assert "reranker_gpu_memory_allocated_bytes" not in families(rendered(cpu))


def test_a_model_whose_observe_is_something_else_still_serves(caplog):
    class Custom(Loader):
        class model:  # noqa: N801  (what a custom model_fn returned)
            @staticmethod
            def observe():
                return "not ours"

    metrics = Metrics()
    metrics.attach(Custom())
    assert value(parse(rendered(metrics)), "reranker_model_ready") == 1.0
    assert "engine metrics stay empty" in caplog.text


def test_a_failing_gpu_reader_does_not_fail_the_scrape():
    def broken(model):
        raise RuntimeError("driver gone")

    metrics = Metrics(gpu_memory=broken)
    metrics.attach(Loader())
    assert value(parse(rendered(metrics)), "reranker_model_ready") == 1.0


def test_forward_passes_feed_batches_tokens_and_padding():
    metrics = Metrics()
    metrics.forwarded(0.02, rows=4, tokens=90, padded_tokens=100)
    metrics.forwarded(0.03, rows=2, tokens=50, padded_tokens=100)
    samples = parse(rendered(metrics))
    assert value(samples, "reranker_tokens_total") == 140
    assert value(samples, "reranker_padded_tokens_total") == 200
    assert value(samples, "reranker_batch_rows_sum") == 6
    assert value(samples, "reranker_batch_tokens_sum") == 140
    assert value(samples, "reranker_batch_padding_efficiency_sum") == pytest.approx(1.4)
    assert value(samples, "reranker_batch_padding_efficiency_bucket", le="0.5") == 1
    assert value(samples, "reranker_batch_padding_efficiency_bucket", le="0.9") == 2
    assert value(samples, "reranker_forward_duration_seconds_count") == 2
    assert value(samples, "reranker_tokens_per_second") == pytest.approx(140 / 60)


def test_durations_are_bucketed_up_to_an_async_requests_hour():
    """An async endpoint's or a Batch Transform call's request may take up to an hour: a
    quantile over such requests must not stop at the real-time limit of 60 s."""
    metrics = Metrics()
    metrics.forwarded(700.0, rows=1, tokens=10, padded_tokens=10)
    samples = parse(rendered(metrics))
    bucket = "reranker_forward_duration_seconds_bucket"
    assert value(samples, bucket, le="60.0") == 0
    assert value(samples, bucket, le="900.0") == value(samples, bucket, le="3600.0") == 1


def test_docs_list_every_metric_with_its_type():
    metrics = Metrics(gpu_memory=lambda model: [("cuda:0", 1, 1)])
    metrics.attach(Loader())
    section = (ROOT / "docs" / "serving.md").read_text().split("## Metrics", 1)[1]
    section = section.split("\n## ", 1)[0]
    for name, kind in families(rendered(metrics)).items():
        if name.startswith("process_"):
            continue
        exposed = name + ("_total" if kind == "counter" else "")
        row = re.search(rf"^\| `{re.escape(exposed)}` \| (\w+) \|", section, re.M)
        assert row, f"{exposed} is not in docs/serving.md's Metrics table"
        assert row.group(1) == kind, exposed


# --- over HTTP, on a model whose forward pass waits on a gate --------------------------

GATED_FORWARD = textwrap.dedent('''
    """A reranker whose forward pass waits while the file "hold" exists."""
    import os
    import time
    from pathlib import Path

    from transformers import AutoTokenizer

    from reranker import model_dir as model_facts
    from reranker.engine import Reranker
    from reranker.loading import load_backend
    from reranker.settings import Settings

    GATES = Path(os.environ["TEST_GATE_DIR"])


    class GatedBackend:
        def __init__(self, backend):
            self._backend = backend

        def __getattr__(self, name):
            return getattr(self._backend, name)

        def forward(self, ids, mask, types):
            if (GATES / "hold").exists():
                (GATES / "held").touch()
                while (GATES / "hold").exists():
                    time.sleep(0.02)
            return self._backend.forward(ids, mask, types)


    def model_fn(model_dir):
        settings = Settings.from_env()
        backend = GatedBackend(load_backend(model_dir, settings))
        return Reranker(backend, AutoTokenizer.from_pretrained(model_dir),
                        model_facts.read(model_dir), settings, "gated")
''')


@pytest.fixture(scope="module")
def gates(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("metrics-gates")


@pytest.fixture(scope="module")
def server(bert_dir, gates, tmp_path_factory):
    import shutil

    model_dir = tmp_path_factory.mktemp("metrics-model") / "model"
    shutil.copytree(bert_dir, model_dir)
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(GATED_FORWARD)
    process = Server(model_dir, env={"TEST_GATE_DIR": str(gates), "SERVE_MAX_CONCURRENCY": "1"})
    try:
        process.wait_ready(120)
        yield process
    finally:
        process.stop(timeout=10)
        process.log_path.unlink(missing_ok=True)


def scrape(url: str) -> dict:
    response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    return parse(response.text)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def tokens_of(engine, pairs) -> int:
    return engine.encoder.encode(pairs).tokens


@pytest.mark.slow
def test_requests_in_every_format_move_the_counters_by_their_amounts(server, bert_engine):
    url = server.url
    jsonlines = "\n".join(json.dumps({"query": QUERY, "documents": [d]}) for d in DOCS)
    sent = [  # route, body, dialect, status, pairs scored
        ("/invocations", {"query": QUERY, "documents": DOCS}, "cohere", 200, DOCS),
        ("/invocations", {"query": QUERY, "texts": DOCS}, "tei", 200, DOCS),
        ("/invocations", {"query": QUERY, "documents": DOCS, "topk": 1}, "topk", 200, DOCS),
        ("/invocations", {"inputs": {"text": QUERY, "text_pair": DOCS[0]}}, "pipeline", 200,
         DOCS[:1]),
        ("/invocations", {"text_pairs": [[QUERY, DOCS[1]]]}, "langchain", 200, DOCS[1:]),
        ("/rerank", {"query": QUERY, "texts": DOCS}, "tei", 200, DOCS),
        ("/v2/rerank", {"query": QUERY, "documents": DOCS}, "cohere", 200, DOCS),
        ("/invocations", {"query": QUERY, "documents": []}, "unknown", 422, []),
    ]
    before = scrape(url)
    with httpx.Client(base_url=url, timeout=60) as http:
        for route, body, _, status, _ in sent:
            assert http.post(route, json=body).status_code == status, (route, body)
        lines = http.post("/invocations", content=jsonlines,
                          headers={"Content-Type": "application/jsonlines"})
        assert lines.status_code == 200
        assert http.post("/invocations", content=b"{not json").status_code == 400
    after = scrape(url)

    expected: dict[tuple, int] = {}
    for route, _, dialect, status, _ in sent:
        key = (route, dialect, str(status))
        expected[key] = expected.get(key, 0) + 1
    expected[("/invocations", "jsonlines", "200")] = 1
    expected[("/invocations", "unknown", "400")] = 1
    expected[("/invocations", "unknown", "422")] = 1
    for (route, dialect, status), count in expected.items():
        assert delta(before, after, "reranker_requests_total", route=route, dialect=dialect,
                     status=status) == count, (route, dialect, status)
    # Answers are timed, errors are not: five formats and the JSON lines body.
    assert delta(before, after, "reranker_request_duration_seconds_count",
                 route="/invocations") == 6
    assert delta(before, after, "reranker_request_duration_seconds_count", route="/rerank") == 1

    # One tokenization and one wait per request scored (each jsonlines line is one).
    scored = [pairs for *_, status, pairs in sent if status == 200]
    assert delta(before, after, "reranker_tokenize_duration_seconds_count") == len(scored) + 2
    assert delta(before, after, "reranker_queue_duration_seconds_count") == len(scored) + 2
    # Sent one at a time, small: one forward pass each, except that the two lines of the
    # JSON lines body are scored on two threads and may share one.
    passes = delta(before, after, "reranker_forward_duration_seconds_count")
    assert len(scored) + 1 <= passes <= len(scored) + 2
    tokens = sum(tokens_of(bert_engine, [(QUERY, d) for d in pairs]) for pairs in scored)
    tokens += sum(tokens_of(bert_engine, [(QUERY, d)]) for d in DOCS)
    assert delta(before, after, "reranker_tokens_total") == tokens
    assert delta(before, after, "reranker_batch_tokens_sum") == tokens
    assert delta(before, after, "reranker_padded_tokens_total") >= tokens
    rows = sum(len(pairs) for pairs in scored) + len(DOCS)
    assert delta(before, after, "reranker_batch_rows_sum") == rows
    assert delta(before, after, "reranker_documents_total") == rows
    # One top score per answered request but the JSON lines one (no single best document).
    assert delta(before, after, "reranker_top_relevance_score_count") == len(scored)
    best = sum(max(bert_engine.score(QUERY, pairs)) for pairs in scored)
    assert delta(before, after, "reranker_top_relevance_score_sum") == pytest.approx(
        best, abs=1e-4)
    assert value(after, "reranker_tokens_per_second") > 0
    assert value(after, "reranker_model_ready") == 1.0
    assert value(after, "reranker_model_load_seconds") > 0
    assert value(after, "reranker_model_info", model="gated", backend="torch", device="cpu",
                 dtype="float32") == 1.0


def hold(gates: Path) -> None:
    (gates / "held").unlink(missing_ok=True)
    (gates / "hold").touch()


@pytest.mark.slow
def test_while_the_engine_is_busy_metrics_answer_and_a_request_over_the_limit_is_shed(
        server, gates):
    url = server.url
    before = scrape(url)
    hold(gates)
    try:
        thread, out = post_in_thread(url, {"query": QUERY, "documents": DOCS})
        wait_file(gates / "held")  # the batcher's worker is inside the forward pass
        for _ in range(3):  # each scrape is bounded by its 5 s timeout
            busy = scrape(url)
        assert value(busy, "reranker_requests_in_flight") == 1.0
        shed = httpx.post(url + "/invocations", json={"query": QUERY, "documents": DOCS})
        assert shed.status_code == 503 and shed.json()["error"]["type"] == "overloaded"
    finally:
        (gates / "hold").unlink(missing_ok=True)
    thread.join(60)
    assert out["response"].status_code == 200
    after = scrape(url)
    assert delta(before, after, "reranker_requests_shed_total", route="/invocations",
                 reason="overloaded") == 1
    assert delta(before, after, "reranker_requests_total", route="/invocations",
                 dialect="unknown", status="503") == 1
    assert delta(before, after, "reranker_requests_total", route="/invocations",
                 dialect="cohere", status="200") == 1
    assert delta(before, after, "reranker_request_duration_seconds_count",
                 route="/invocations") == 1  # the shed request is not timed
    assert value(after, "reranker_requests_in_flight") == 0.0
    assert delta(before, after, "reranker_requests_cancelled_total", route="/invocations") == 0


@pytest.mark.slow
def test_a_client_that_leaves_before_its_answer_is_counted_as_cancelled(server, gates):
    url = server.url
    before = scrape(url)
    body = json.dumps({"query": QUERY, "documents": DOCS}).encode()
    hold(gates)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            wait_file(gates / "held")
        # The server's event loop handles the closed socket before it answers a request
        # that arrives after it: one scrape is the point after which it has noticed.
        scrape(url)
    finally:
        (gates / "hold").unlink(missing_ok=True)
    deadline = time.monotonic() + 30
    while True:  # the request is dropped once its client has gone, and logged 499
        after = scrape(url)
        # Its dialect is not known: the answer that would have named it was never made.
        if delta(before, after, "reranker_requests_total", route="/invocations",
                 dialect="unknown", status="499") == 1:
            break
        assert time.monotonic() < deadline, "the abandoned request was never logged"
        time.sleep(0.05)
    assert delta(before, after, "reranker_requests_cancelled_total", route="/invocations") == 1
    assert value(after, "reranker_requests_in_flight") == 0.0
    assert httpx.post(url + "/invocations", json={"query": QUERY, "documents": DOCS},
                      timeout=60).status_code == 200
