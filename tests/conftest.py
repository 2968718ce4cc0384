"""Fixtures every test folder shares: a real redis-server, a scratch folder for process logs, and a
check that an async test leaves no task running on its event loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port for the whole session (flush between tests yourself)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def no_task_left_running(request: pytest.FixtureRequest) -> None:
    """Async tests get :func:`tasks_finished`, set up first, so it checks after the test's own fixtures."""
    if inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        request.getfixturevalue("tasks_finished")


@pytest.fixture
async def tasks_finished() -> AsyncIterator[None]:
    """Fail the test when a task it started is still running after its fixtures were torn down.

    The loop gets one turn first, for tasks that end on a callback already scheduled. Leftover tasks
    are cancelled and awaited before the failure, so none outlives the test either way.
    """
    yield
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    if left:
        names = sorted(f"{t.get_name()} ({t.get_coro()!r})" for t in left)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        pytest.fail(f"the test left {len(left)} task(s) running: {'; '.join(names)}", pytrace=False)
