"""`disinfo-clf serve` in a subprocess on a free loopback port, for the load and browser tests."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> float:
        """SIGTERM, then wait for the exit; the seconds it took (killed and failed when over ``timeout``)."""
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the server ignored SIGTERM for {timeout} s; log:\n{self.log_text()}") from None
        return time.monotonic() - start


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None, startup_s: float = 180.0) -> Iterator[Server]:
    """Start the server with ``args`` and wait until ``/healthz`` answers; SIGTERM it afterwards."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "disinfo_clf.cli", "serve", "--port", str(port), *args],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}; log:\n{server.log_text()}")
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer within {startup_s} s; log:\n{server.log_text()}")
            time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
