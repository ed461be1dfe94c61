"""16 concurrent clients x 50 requests: all answered, no errors, and every score equal to
the same request sent alone (the batcher mixes requests; scores must not notice)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from demo_models.encoders import CORPUS

pytestmark = pytest.mark.slow  # starts servers

CLIENTS, REQUESTS = 16, 50


def make_bodies(count: int) -> list[dict]:
    """Distinct requests of mixed sizes and lengths (so batches mix lengths too)."""
    rng = random.Random(7)
    bodies = []
    for _ in range(count):
        docs = [" ".join(rng.choices(CORPUS, k=rng.randint(1, 6)))
                for _ in range(rng.randint(1, 8))]
        bodies.append({"query": rng.choice(CORPUS), "texts": docs, "raw_scores": True})
    return bodies


def scores(response: httpx.Response) -> list[float]:
    assert response.status_code == 200, response.text
    ranked = response.json()
    return [s for _, s in sorted((r["index"], r["score"]) for r in ranked)]


def test_concurrent_clients_get_the_scores_of_sequential_requests(base_url):
    bodies = make_bodies(40)
    with httpx.Client(base_url=base_url, timeout=120) as http:
        expected = [scores(http.post("/invocations", json=b)) for b in bodies]

    def client_run(c: int) -> list[tuple[int, list[float]]]:
        got = []
        with httpx.Client(base_url=base_url, timeout=120) as http:
            for r in range(REQUESTS):
                k = (c * REQUESTS + r) % len(bodies)
                got.append((k, scores(http.post("/invocations", json=bodies[k]))))
        return got

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [item for run in pool.map(client_run, range(CLIENTS)) for item in run]
    assert len(results) == CLIENTS * REQUESTS
    for k, got in results:
        assert got == pytest.approx(expected[k], abs=1e-6)
