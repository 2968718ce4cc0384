"""The single-flight helper: one run per key, shared by concurrent callers."""

from __future__ import annotations

import asyncio

import pytest

from services.common.singleflight import SingleFlight


async def test_concurrent_callers_of_a_key_share_one_run() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    runs: list[str] = []
    release = asyncio.Event()

    async def work(name: str) -> int:
        runs.append(name)
        await release.wait()
        return len(name)

    waiters = [asyncio.create_task(flight.run("a", lambda: work("a"))) for _ in range(5)]
    other = asyncio.create_task(flight.run("bb", lambda: work("bb")))
    await asyncio.sleep(0)
    assert "a" in flight and "bb" in flight and len(flight) == 2
    release.set()
    assert await asyncio.gather(*waiters) == [1] * 5 and await other == 2
    assert sorted(runs) == ["a", "bb"]


async def test_a_cancelled_waiter_leaves_the_work_to_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()
    finished: list[str] = []

    async def work() -> str:
        await release.wait()
        finished.append("done")
        return "value"

    first = asyncio.create_task(flight.run("k", work))
    second = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "value" and finished == ["done"]


async def test_work_whose_every_waiter_left_still_finishes() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()
    finished: list[str] = []

    async def work() -> str:
        await release.wait()
        finished.append("done")
        return "value"

    only = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    assert "k" in flight
    release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert finished == ["done"] and "k" not in flight


async def test_an_exception_reaches_every_waiter_and_frees_the_key() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls: list[int] = []
    release = asyncio.Event()

    async def failing() -> int:
        calls.append(1)
        await release.wait()
        raise LookupError("no such thing")

    waiters = [asyncio.create_task(flight.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, LookupError) and str(o) == "no such thing" for o in outcomes)
    assert len(calls) == 1 and "k" not in flight and len(flight) == 0

    async def working() -> int:
        calls.append(2)
        return 7

    # The key was forgotten: the next caller starts the work again.
    assert await flight.run("k", working) == 7 and calls == [1, 2] and "k" not in flight


async def test_the_key_is_free_as_soon_as_a_result_is_handed_out() -> None:
    flight: SingleFlight[int, int] = SingleFlight()
    runs: list[int] = []

    async def work() -> int:
        runs.append(1)
        return len(runs)

    assert await flight.run(1, work) == 1
    assert 1 not in flight
    assert await flight.run(1, work) == 2
