"""Dynamic micro-batching: concurrent requests share model calls, and each gets its own answers."""
from __future__ import annotations

import asyncio
import threading
from typing import Hashable

import pytest

from disinfo_clf.serve.batching import MicroBatcher


class Recorder:
    """A stand-in model that remembers its calls and answers ``text.upper()`` plus the option."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.calls: list[tuple[list[str], Hashable]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(self, texts: list[str], option: Hashable) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.calls.append((list(texts), option))
        if self.fail_on in texts:
            raise ValueError(f"cannot read {self.fail_on!r}")
        if self.delay:
            threading.Event().wait(self.delay)
        return [f"{t.upper()}/{option}" for t in texts]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call_and_get_their_own_answers() -> None:
    model = Recorder()

    async def go() -> list[list[str]]:
        batcher = MicroBatcher(model, max_wait_ms=50, max_texts=100)
        out = await asyncio.gather(*(batcher.submit([f"a{i}", f"b{i}"], 3) for i in range(10)))
        await batcher.close()
        return out

    out = run(go())
    assert out == [[f"A{i}/3", f"B{i}/3"] for i in range(10)]
    assert len(model.calls) == 1 and len(model.calls[0][0]) == 20
    assert len(model.threads) == 1 and not model.threads & {threading.current_thread().name}


def test_batches_hold_at_most_max_texts_and_split_by_option() -> None:
    model = Recorder()

    async def go() -> list[list[str]]:
        batcher = MicroBatcher(model, max_wait_ms=50, max_texts=4)
        jobs = [batcher.submit([f"t{i}"], i % 2) for i in range(8)]
        out = await asyncio.gather(*jobs)
        await batcher.close()
        return out

    out = run(go())
    assert out == [[f"T{i}/{i % 2}"] for i in range(8)]
    assert all(len(texts) <= 4 for texts, _ in model.calls)
    assert all({int(t[1:]) % 2 for t in texts} == {option} for texts, option in model.calls)
    assert sum(len(texts) for texts, _ in model.calls) == 8 and len(model.calls) <= 4


def test_without_batching_every_request_runs_alone() -> None:
    model = Recorder()

    async def go() -> None:
        batcher = MicroBatcher(model, max_wait_ms=50, batching=False)
        await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(5)))
        await batcher.close()

    run(go())
    assert sorted(texts[0] for texts, _ in model.calls) == [f"t{i}" for i in range(5)]
    assert len(model.calls) == 5


def test_one_bad_request_does_not_fail_the_others() -> None:
    model = Recorder(fail_on="bad")

    async def go() -> list[object]:
        batcher = MicroBatcher(model, max_wait_ms=50)
        out = await asyncio.gather(batcher.submit(["good"]), batcher.submit(["bad"]), batcher.submit(["fine"]),
                                   return_exceptions=True)
        await batcher.close()
        return out

    good, bad, fine = run(go())
    assert good == ["GOOD/None"] and fine == ["FINE/None"]
    assert isinstance(bad, ValueError) and "'bad'" in str(bad)


def test_requests_arriving_during_a_call_form_the_next_batch() -> None:
    model = Recorder(delay=0.2)

    async def go() -> None:
        batcher = MicroBatcher(model, max_wait_ms=1)
        first = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.05)  # the first call is running now
        await asyncio.gather(first, *(batcher.submit([f"t{i}"]) for i in range(6)))
        await batcher.close()

    run(go())
    assert [len(texts) for texts, _ in model.calls] == [1, 6]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_texts"):
        MicroBatcher(Recorder(), max_texts=0)
