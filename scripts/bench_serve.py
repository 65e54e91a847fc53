"""Requests/s and p50/p95 latency of `disinfo-clf serve` on loopback, with and without micro-batching.

    python scripts/bench_serve.py [--output benchmarks/results.json] [--requests 200]

Starts the server (default model) in a subprocess for each mode, sends one database title per
request from 1, 8 and 40 concurrent clients (threads, one keep-alive connection each), and writes
the figures under the key "serve" of the output file, keeping its other keys.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 40)
SERVER = "from disinfo_clf.serve.server import run; import sys; run(port=int(sys.argv[1]), batching=sys.argv[2] == '1')"


def start(port: int, batching: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), "1" if batching else "0"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}") from None
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start within 180 s")


def load(port: int, texts: list[str], clients: int) -> dict[str, Any]:
    """Send every text as one request, from ``clients`` threads at once."""
    local = threading.local()

    def one(text: str) -> float:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        body = json.dumps({"text": text})
        t = time.perf_counter()
        local.conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "application/json"})
        response = local.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return time.perf_counter() - t

    start_time = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = np.array(list(pool.map(one, texts))) * 1000
    wall = time.perf_counter() - start_time
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"clients": clients, "requests": len(texts), "requests_per_s": round(len(texts) / wall, 1),
            "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level (default 200)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from disinfo_clf.data import load_database_csv

    titles = [case.title for case in load_database_csv()]
    results: dict[str, Any] = {"texts": "one database title per request (mean %d characters)" % int(
        np.mean([len(t) for t in titles[:args.requests]])), "model": "default", "runs": {}}
    port = 18000 + os.getpid() % 1000
    for batching in (True, False):
        mode = "batching" if batching else "no_batching"
        process = start(port, batching)
        try:
            load(port, titles[:16], 4)  # warm-up
            results["runs"][mode] = [load(port, titles[:args.requests], clients) for clients in CONCURRENCY]
        finally:
            process.terminate()
            process.wait(30)
        for row in results["runs"][mode]:
            print(f"{mode:<12} {row['clients']:>3} clients: {row['requests_per_s']:>7.1f} requests/s, "
                  f"p50 {row['p50_ms']:>7.1f} ms, p95 {row['p95_ms']:>7.1f} ms")
    results["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results["machine"] = {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    output = Path(args.output)
    data = json.loads(output.read_text(encoding="utf-8")) if output.is_file() else {}
    data["serve"] = results
    output.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written under 'serve' in {output}")


if __name__ == "__main__":
    main()
