"""Dynamic micro-batching: the texts of concurrent requests go through the model in one call.

A request's texts wait at most ``max_wait_ms`` for others to join them (no wait when the last batch
held one request alone: a single client pays nothing), up to ``max_texts`` texts in all; the batch then runs as one call in the model's worker thread, and each request gets back its own
slice. Requests asking for different options (``top_k``, ``k``) run in separate calls of the same
batch, so every answer is what the library gives for the same texts and options. While a batch runs,
new requests queue up and form the next one, so batches grow with the load by themselves.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

logger = logging.getLogger(__name__)

BatchFunction = Callable[[list[str], Hashable], Sequence[Any]]
"""``fn(texts, option)`` → one result per text, in order."""


@dataclass
class _Job:
    texts: list[str]
    option: Hashable
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Runs ``fn`` on the gathered texts of concurrent :meth:`submit` calls, one call at a time.

    ``batching=False`` runs every request alone, in arrival order, in the same worker thread (the
    baseline the benchmark compares against). Batchers given the same ``thread`` take turns on it.
    """

    def __init__(self, fn: BatchFunction, *, max_wait_ms: float = 5.0, max_texts: int = 64,
                 batching: bool = True, name: str = "model", thread: "ModelThread | None" = None) -> None:
        if max_wait_ms < 0 or max_texts < 1:
            raise ValueError(f"max_wait_ms must be >= 0 and max_texts >= 1, got {max_wait_ms!r} and {max_texts!r}")
        self.fn = fn
        self.max_wait = max_wait_ms / 1000.0
        self.max_texts = max_texts
        self.batching = batching
        self.name = name
        self.calls = 0
        """Calls of ``fn`` so far (a batch of several options makes several calls)."""
        self._last_jobs = 1
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._thread = thread if thread is not None else ModelThread(f"disinfo-{name}")

    async def submit(self, texts: list[str], option: Hashable = None) -> list[Any]:
        """``fn(texts, option)``, run together with the texts of other requests waiting at the same time."""
        if not texts:
            return []
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")
        job = _Job(list(texts), option, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        """Stop the worker: queued requests fail with :class:`RuntimeError`; the running batch finishes."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._thread.stop()

    async def _run(self) -> None:
        assert self._queue is not None
        held: _Job | None = None
        while True:
            first = held if held is not None else await self._queue.get()
            held = None
            jobs = [first]
            if self.batching:
                # A lone client (the last batch was one request) takes no wait; it only gathers what queued.
                held = await self._gather(jobs, wait=self._last_jobs > 1)
                self._last_jobs = len(jobs)
            await self._execute(jobs)

    async def _gather(self, jobs: list[_Job], wait: bool = True) -> _Job | None:
        """Add waiting jobs to ``jobs`` until ``max_texts`` or ``max_wait`` (no wait: only the queued
        ones); the job that did not fit, if any."""
        assert self._queue is not None
        count = len(jobs[0].texts)
        deadline = time.monotonic() + (self.max_wait if wait else 0.0)
        while count < self.max_texts:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if count + len(job.texts) > self.max_texts:
                return job
            jobs.append(job)
            count += len(job.texts)
        return None

    async def _execute(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if not job.future.done()]  # a client that went away needs no answer
        groups: dict[Hashable, list[_Job]] = {}
        for job in live:
            groups.setdefault(job.option, []).append(job)
        loop = asyncio.get_running_loop()
        for option, group in groups.items():
            texts = [text for job in group for text in job.texts]
            try:
                results = await self._thread.run(loop, self._call, texts, option)
            except Exception as exc:  # noqa: BLE001 - handed to the requests that asked
                if len(group) > 1:
                    # One request's input must not fail the others: run each alone to find whose it was.
                    for job in group:
                        await self._execute([job])
                    continue
                _settle(group[0].future, exc=exc)
                continue
            pos = 0
            for job in group:
                n = len(job.texts)
                _settle(job.future, result=list(results[pos:pos + n]))
                pos += n

    def _call(self, texts: list[str], option: Hashable) -> Sequence[Any]:
        self.calls += 1
        results = self.fn(texts, option)
        if len(results) != len(texts):
            raise RuntimeError(f"{self.name}: {len(results)} results for {len(texts)} texts")
        return results


class ModelThread:
    """One daemon thread that runs the model calls in turn: the event loop stays free meanwhile, and a
    stopping server does not wait for a long call to end (the process may exit under it)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """``fn(*args)`` in the thread, as a future of ``loop``."""
        future = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def stop(self) -> None:
        """End the thread after the call it is running, if any."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, args = job
            try:
                outcome, failure = fn(*args), None
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting request
                outcome, failure = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, failure)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass


def _settle(future: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
