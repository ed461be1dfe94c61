import os
from pathlib import Path

import pytest

# The engine, server, deploy tool and benchmarks are the installed project (`make venv`);
# pytest itself puts tests/ on the path for the helpers beside this file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from demo_models import encoders as tiny_models  # noqa: E402  (after the offline switches above)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """Lazily built tiny models, one directory per architecture, shared by the session."""
    cache: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in cache:
            cache[kind] = tiny_models.BUILDERS[kind](tmp_path_factory.mktemp(kind))
        return cache[kind]

    return get


@pytest.fixture(scope="session")
def bert_dir(model_dirs) -> Path:
    return model_dirs("bert")


@pytest.fixture(scope="session")
def bert_engine(bert_dir):
    from reranker.engine import Reranker
    from reranker.settings import Settings

    engine = Reranker.from_dir(str(bert_dir), Settings())
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def base_url(bert_dir):
    """The one server the HTTP suites (test_server_api, test_server_errors, _hostile,
    _framing, _fuzz, _load) and the client-library suites (test_cohere_client,
    test_langchain_client, test_tei_route) share: RERANK_TEST_URL's (make docker-test) or our
    own, started once with suite_server.SUITE_ENV's limits.  They all ask for the same model
    under the same settings, and a server takes seconds to start.  A module that needs other
    settings starts its own."""
    from suite_server import suite_server

    with suite_server(bert_dir) as url:
        yield url


@pytest.fixture(scope="session")
def suite_model_dir(bert_dir) -> Path:
    """The model base_url's server serves: RERANK_TEST_MODEL_DIR with RERANK_TEST_URL."""
    if os.environ.get("RERANK_TEST_URL"):
        return Path(os.environ["RERANK_TEST_MODEL_DIR"])
    return bert_dir


@pytest.fixture(scope="session")
def client_suite(base_url, suite_model_dir):
    """(base URL, in-process engine on its model) for the client-library suites."""
    from clientutil import local_engine

    with local_engine(suite_model_dir) as engine:
        yield base_url, engine


@pytest.fixture(scope="module")
def client(base_url):
    import httpx

    with httpx.Client(base_url=base_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def client_url(client_suite) -> str:
    return client_suite[0]


@pytest.fixture(scope="session")
def client_engine(client_suite):
    return client_suite[1]


@pytest.fixture(scope="session")
def llm_dirs(tmp_path_factory):
    """Lazily built tiny LLM rerankers (demo_models.llm), one directory per family."""
    from demo_models import llm

    cache: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in cache:
            # Named as the hub names them: a family's reranker is recognised by its name.
            cache[kind] = llm.BUILDERS[kind](tmp_path_factory.mktemp(f"{kind}-reranker"))
        return cache[kind]

    return get


@pytest.fixture(scope="session")
def qwen3_engine(llm_dirs):
    """An engine on the tiny Qwen3-Reranker with the default settings (no warm-up), for the
    tests that only score through it: loading the Qwen vocabulary takes seconds, so it is
    loaded once.  A test that changes an engine (observers, settings, its backend) loads
    its own."""
    from clientutil import local_engine

    with local_engine(llm_dirs("qwen3")) as engine:
        yield engine


@pytest.fixture(scope="session")
def llm_suite(llm_dirs, qwen3_engine):
    """(base URL, in-process engine) for a tiny Qwen3-Reranker, which takes instructions:
    one server for the client suites that send them."""
    from bench.local_server import start_server

    with start_server(llm_dirs("qwen3")) as url:
        yield url, qwen3_engine
