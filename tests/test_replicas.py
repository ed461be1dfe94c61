"""Multi-GPU instances: each DLC worker's engine on the GPU multi-model-server gave it, and
under our server one engine per GPU behind one object, each request to the engine with the
least work outstanding.
The placement is decided for any number of GPUs here; the replicas themselves run on CPU
engines (what differs on GPUs is only the device each was given)."""

from __future__ import annotations

import queue
import threading
import types

import numpy as np
import pytest

import inference
from reranker import replicas
from reranker.backends.base import ModelLoadError
from reranker.context import gpu_id
from reranker.engine import Reranker
from reranker.request import RerankRequest
from reranker.settings import Settings
from serving.hooks import RequestContext

AUTO = Settings()


@pytest.mark.parametrize("settings, worker_gpu, visible, devices", [
    (AUTO, None, 0, ["auto"]),                        # no GPU: the CPU (or a clear refusal)
    (AUTO, None, 1, ["auto"]),                        # one GPU: as ever
    (AUTO, None, 4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),  # ml.g5.12xlarge, ours
    (Settings(gpus=2), None, 4, ["cuda:0", "cuda:1"]),
    (Settings(gpus=1), None, 4, ["auto"]),
    (Settings(gpus=8), None, 4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
    (AUTO, 3, 4, ["cuda:3"]),                         # the DLC's fourth worker
    (Settings(device="cuda"), 1, 4, ["cuda:1"]),
    (Settings(device="cpu"), 3, 4, ["cpu"]),
    (Settings(device="cuda:2"), None, 4, ["cuda:2"]),
])
def test_devices(settings, worker_gpu, visible, devices):
    assert replicas.devices_for(settings, worker_gpu, visible) == devices


def test_the_dlc_workers_gpu_is_read_from_its_context():
    context = RequestContext({}, "/opt/ml/model")
    assert gpu_id(context) is None  # our server's
    for given, read in ((2, 2), ("1", 1), (-1, None), (None, None), ("x", None)):
        context.system_properties["gpu_id"] = given
        assert gpu_id(context) == read
    assert gpu_id(None) is None


@pytest.mark.parametrize("env, threads", [
    ({}, 1),  # multi-model-server's default: a worker per vCPU
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 8),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MMS_DEFAULT_WORKERS_PER_MODEL": "1"}, 16),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "32"}, 1),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "lots"}, 1),
])
def test_a_dlc_worker_on_cpu_takes_its_share_of_the_cores(monkeypatch, env, threads):
    """Under multi-model-server every worker holds a model copy whose torch would use every
    core: each gets cores / workers threads, on 16 cores here (our server: torch's
    default, 0)."""
    from reranker.context import worker_threads

    for name in ("SAGEMAKER_MODEL_SERVER_WORKERS", "MMS_DEFAULT_WORKERS_PER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert worker_threads(RequestContext({}, "/opt/ml/model"), cpus=16) == 0  # our server's
    mms = types.SimpleNamespace(system_properties={"server_name": "MMS", "gpu_id": None})
    assert worker_threads(mms, cpus=16) == threads


def test_settings_take_one_gpu_by_index():
    assert Settings.from_env({"RERANK_DEVICE": "cuda:3", "RERANK_GPUS": "2"}).device == "cuda:3"
    for bad in ({"RERANK_DEVICE": "cuda:x"}, {"RERANK_GPUS": "-1"}):
        with pytest.raises(Exception, match="RERANK_"):
            Settings.from_env(bad)


def test_a_gpu_device_without_cuda_is_refused(bert_dir):
    with pytest.raises(ModelLoadError, match="RERANK_DEVICE=cuda:0 but no CUDA device"):
        replicas.load(str(bert_dir), settings=AUTO, visible=2)


def test_model_fn_on_a_cpu_worker_loads_one_engine(bert_dir):
    context = RequestContext({}, str(bert_dir))
    context.system_properties["gpu_id"] = 0  # MMS numbers workers on CPU hosts too
    model = inference.model_fn(str(bert_dir), context)
    try:
        assert isinstance(model, Reranker)
    finally:
        model.close()


@pytest.fixture(scope="module")
def pair(bert_dir):
    settings = Settings(device="cpu", warmup=False)
    engines = [Reranker.from_dir(str(bert_dir), settings) for _ in range(2)]
    yield replicas.Replicas(engines)
    for engine in engines:
        engine.close()


def request(docs=("washington dc", "a panda"), **fields) -> RerankRequest:
    return RerankRequest("cohere", [("capital of america", d) for d in docs], list(docs),
                         **fields)


def test_replicas_answer_as_one_engine(pair, bert_engine):
    got = pair.rerank(request())
    assert np.allclose(got.raw, bert_engine.rerank(request()).raw, atol=1e-5)
    info = pair.describe()
    assert info["replicas"] == 2 and info["device"] == "cpu,cpu"
    assert pair.health() and pair.settings.device == "cpu"
    seen = []
    pair.observe(type("O", (), {"__getattr__": lambda self, name: lambda *a: seen.append(name)})())
    pair.rerank(request())
    assert seen  # every engine reports to the observer


def test_each_request_goes_to_the_least_busy_engine(pair, monkeypatch):
    entered, release, used = threading.Barrier(3, timeout=30), threading.Event(), []
    for index, engine in enumerate(pair.engines):
        original = engine.rerank

        def held(req, cancel=None, index=index, original=original):
            used.append(index)
            entered.wait()  # both requests are in flight before either finishes
            release.wait(30)
            return original(req, cancel=cancel)

        monkeypatch.setattr(engine, "rerank", held)
    threads = [threading.Thread(target=pair.rerank, args=(request(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    entered.wait()
    release.set()
    for thread in threads:
        thread.join(30)
    assert sorted(used) == [0, 1]
    assert pair._outstanding == [0, 0]


def test_work_is_weighed_by_the_characters_of_each_pair():
    assert replicas.weight(request(["ab", ""])) == 2 * len("capital of america") + 2 + 2
    assert replicas.weight(request([])) == 0
    # A passage longer than the engine scores weighs what is scored of it.
    assert replicas.weight(request(["x" * 10_000]), most=600) == 601


def test_what_is_scored_of_a_pair_bounds_its_weight(pair):
    engine = pair.engines[0]
    plain = replicas.scored_chars(engine, request(["a"]))
    assert plain == engine.max_length * replicas.CHARS_PER_TOKEN
    chunked = replicas.scored_chars(engine, request(["a"], long_documents="chunk", max_chunks=3))
    assert chunked == 3 * plain


def test_the_engine_with_the_least_work_outstanding_is_chosen():
    assert replicas.least([0, 0, 0]) == 0  # the first of equals
    assert replicas.least([900, 40, 40]) == 1
    assert replicas.least([5, 40, 0]) == 2
    engine = types.SimpleNamespace(settings=AUTO, name="m", backend="torch")
    router = replicas.Replicas([engine, engine])
    # Counting requests would alternate 0, 1, 0: one large request outweighs two small ones.
    assert [router._take(work) for work in (1000, 10, 10)] == [0, 1, 1]
    assert router._outstanding == [1000, 20]


def test_small_requests_go_around_a_large_one_in_flight(pair, bert_engine, monkeypatch):
    entered, release = queue.Queue(), threading.Event()
    for index, engine in enumerate(pair.engines):
        original = engine.rerank

        def held(req, cancel=None, index=index, original=original):
            entered.put(index)
            release.wait(30)  # every request stays in flight until the last is routed
            return original(req, cancel=cancel)

        monkeypatch.setattr(engine, "rerank", held)
    large = request(["a panda eats bamboo in the mountains of sichuan " * 20] * 20)
    small = request(["washington dc"])
    results, threads, used = {}, [], []
    for name, req in (("large", large), ("small 1", small), ("small 2", small)):
        thread = threading.Thread(target=lambda n=name, r=req: results.update({n: pair.rerank(r)}))
        thread.start()
        threads.append(thread)
        used.append(entered.get(timeout=30))  # routed before the next one is sent
    release.set()
    for thread in threads:
        thread.join(30)
    # With both small requests in flight, counting would see one request on each engine and
    # send the second small one to engine 0, behind the large one.
    assert used == [0, 1, 1]
    assert pair._outstanding == [0, 0]
    for name, req in (("large", large), ("small 1", small), ("small 2", small)):
        assert np.allclose(results[name].raw, bert_engine.rerank(req).raw, atol=1e-5)


def test_a_failed_request_gives_its_work_back(pair, monkeypatch):
    def fails(req, cancel=None):
        raise RuntimeError("the device failed")

    monkeypatch.setattr(pair.engines[0], "rerank", fails)
    with pytest.raises(RuntimeError, match="the device failed"):
        pair.rerank(request())
    assert pair._outstanding == [0, 0]
