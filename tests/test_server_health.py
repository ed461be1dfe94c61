"""GET /ping follows the backend's own health check, run off the event loop and at most
once per interval; the app's settings (config) and its model close, bounded in time."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

from serving import loader as loader_module
from serving.app import build_app
from serving.config import ServerConfig
from serving.shutdown import phases


class FakeModel:
    def __init__(self):
        self.healthy = True
        self.checks = 0

    def health(self) -> bool:
        self.checks += 1
        return self.healthy


def starlette_app(wrapped):
    """The Starlette app inside the middlewares (request log, metrics)."""
    app = wrapped
    while not hasattr(app, "state"):
        app = app.app
    return app


def ready_app(model, tmp_path):
    wrapped = build_app(ServerConfig(model_dir=str(tmp_path)))
    app = starlette_app(wrapped)
    app.state.loader.model = model
    app.state.loader._ready.set()
    return wrapped


def test_ping_is_503_when_the_backend_reports_a_fault(tmp_path, monkeypatch):
    monkeypatch.setattr(loader_module, "HEALTH_INTERVAL", 0.0)
    model = FakeModel()
    with TestClient(ready_app(model, tmp_path)) as client:
        assert client.get("/ping").status_code == 200
        model.healthy = False  # a lost GPU
        response = client.get("/ping")
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "unhealthy"
        assert response.headers["retry-after"]


def test_the_health_check_runs_at_most_once_per_interval(tmp_path):
    model = FakeModel()
    with TestClient(ready_app(model, tmp_path)) as client:
        for _ in range(20):
            assert client.get("/ping").status_code == 200
    assert model.checks == 1


def test_a_model_without_health_is_healthy_and_one_that_raises_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(loader_module, "HEALTH_INTERVAL", 0.0)

    class Broken:
        def health(self):
            raise RuntimeError("CUDA error: an illegal memory access")

    with TestClient(ready_app(object(), tmp_path)) as client:
        assert client.get("/ping").status_code == 200
    with TestClient(ready_app(Broken(), tmp_path)) as client:
        assert client.get("/ping").status_code == 503


def test_a_health_check_that_hangs_reads_as_unhealthy(tmp_path, monkeypatch):
    monkeypatch.setattr(loader_module, "HEALTH_WAIT", 0.05)
    monkeypatch.setattr(loader_module, "HEALTH_HUNG", 0.3)
    release = threading.Event()

    class Hangs:
        def health(self):
            release.wait(30)  # a GPU that never answers
            return True

    with TestClient(ready_app(Hangs(), tmp_path)) as client:
        assert client.get("/ping").status_code == 200  # not yet known
        time.sleep(0.4)
        assert client.get("/ping").status_code == 503
        release.set()


def test_closing_a_model_that_hangs_returns_by_the_timeout(tmp_path):
    release = threading.Event()

    class Hangs:
        def close(self):
            release.wait(30)

    loader = starlette_app(build_app(ServerConfig(model_dir=str(tmp_path)))).state.loader
    loader.model = Hangs()
    started = time.monotonic()
    loader.close(timeout=0.2)
    assert time.monotonic() - started < 5
    release.set()


@pytest.mark.parametrize("deadline", [0.0, 1.0, 3.0, 25.0, 60.0])
def test_drain_and_close_fit_within_the_deadline(deadline):
    split = phases(deadline)
    assert 0 <= split.close and split.drain + split.close <= deadline
    assert split.drain >= deadline - 2.0  # the requests in flight get nearly all of it


def test_info_waits_for_the_model_and_names_a_custom_one_by_its_folder(tmp_path):
    loading = TestClient(build_app(ServerConfig(model_dir=str(tmp_path))))  # no lifespan: no load
    for path in ("/info", "/v1/models"):
        response = loading.get(path)
        assert response.status_code == 503 and response.json()["error"]["type"] == "model_loading"
    with TestClient(ready_app(object(), tmp_path)) as client:  # a custom model_fn's object
        assert client.get("/info").json()["model_id"] == tmp_path.name
        assert client.get("/v1/models").json()["data"][0]["id"] == tmp_path.name
