"""The real server on loopback: 40 concurrent clients, each answer equal to `predict`; SIGTERM honoured."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import logging
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


from serve_process import serving  # noqa: E402

logger = logging.getLogger(__name__)
CLIENTS = 40
TOKEN = "load-test-token"


def call(url: str, body: dict[str, Any], token: str | None = TOKEN) -> tuple[int, Any, float]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - start
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), time.perf_counter() - start


def _library_answers(requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """What ``predict`` gives for each request in a fresh process, like the server's: earlier tests in
    this process (Ray, torch training) may have changed its thread settings, and with them the last
    digits of scores."""
    code = ("import json, sys; from disinfo_clf import predict; requests = json.load(sys.stdin); "
            "print(json.dumps([[p.to_dict() for p in predict(r['texts'], top_k=3)] if 'texts' in r else "
            "[predict(r['text']).to_dict()] for r in requests]))")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(requests), capture_output=True, text=True,
                          timeout=600, check=True, env=dict(os.environ))  # the server inherits this environment too
    return json.loads(done.stdout)


@pytest.mark.slow
def test_forty_concurrent_clients_get_what_predict_gives(tmp_path: Path, titles: list[str]) -> None:
    # Each client sends its own texts: one title, or two, so requests of different sizes share batches.
    requests = [{"text": titles[i]} if i % 2 else {"texts": [titles[i], titles[i + 500]], "top_k": 3}
                for i in range(CLIENTS)]
    expected = _library_answers(requests)
    with serving(tmp_path, env={"DISINFO_CLF_TOKEN": TOKEN}) as server:
        url = server.url + "/v1/predict"
        assert call(url, {"text": titles[0]}, token=None)[0] == 401
        barrier = threading.Barrier(CLIENTS)

        def client(i: int) -> tuple[int, Any, float]:
            barrier.wait()  # all 40 at once
            return call(url, requests[i])

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(client, range(CLIENTS)))
        seconds = server.stop()
        log = server.log_text()
    for i, (status, body, _) in enumerate(answers):
        assert status == 200, (i, body)
        assert body["predictions"] == expected[i], f"client {i} got an answer that differs from predict()"
    latencies = np.array([s for _, _, s in answers]) * 1000
    p50, p95 = np.percentile(latencies, [50, 95])
    logger.warning("%d concurrent clients: p50 %.0f ms, p95 %.0f ms", CLIENTS, p50, p95)
    print(f"\n{CLIENTS} concurrent clients: p50 {p50:.0f} ms, p95 {p95:.0f} ms, SIGTERM exit in {seconds:.1f} s")
    assert log.count("POST /v1/predict 200 texts=") == CLIENTS
    assert seconds < 10 and server.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises it


@pytest.mark.slow
def test_sigterm_during_requests_stops_within_seconds(tmp_path: Path, titles: list[str]) -> None:
    with serving(tmp_path) as server:
        url = server.url + "/v1/predict"
        results: list[int] = []

        def busy() -> None:
            try:
                results.append(call(url, {"texts": titles[:64]}, token=None)[0])
            except OSError:
                results.append(-1)  # refused or cut off: the server is going away

        threads = [threading.Thread(target=busy) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        seconds = server.stop()
        for t in threads:
            t.join(30)
    assert seconds < 8, f"took {seconds:.1f} s to stop"
    assert len(results) == 4 and all(code in (200, 503, -1) for code in results), results
